"""Container resource limits as the agent's options give them: parsed, checked, turned into the daemon's fields."""

from __future__ import annotations

import pytest

from gitflows.docker.runner import Limits, parse_memory
from gitflows.errors import ConfigurationError

from ..test_cli import run_cli


@pytest.mark.parametrize("text,size", [("512m", 512 * 2**20), ("2g", 2 * 2**30), ("1.5g", int(1.5 * 2**30)),
                                       ("65536k", 65536 * 1024), ("100MiB", 100 * 2**20), ("7000000", 7000000),
                                       (8 * 2**20, 8 * 2**20)])
def test_memory_sizes(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["lots", "-5m", "5m", "1t", "", "12 cats", True])
def test_bad_memory_sizes_say_what_is_expected(text):
    with pytest.raises(ConfigurationError, match="container memory .*(expected bytes or a size such as 512m|at least 6m)"):
        parse_memory(text)


def test_host_config_fields_and_description():
    limits = Limits(memory="1g", cpus=1.5, pids=100)
    assert limits.host_config() == {"mem_limit": 2**30, "memswap_limit": 2**30, "nano_cpus": 1_500_000_000,
                                    "pids_limit": 100}
    assert limits.describe() == "memory 1 GiB, 1.5 CPUs, 100 processes"
    assert Limits().host_config() == {} and Limits().describe() == "no limits"


@pytest.mark.parametrize("limits,message", [(Limits(cpus=0), "container cpus 0: expected a number of CPUs above 0"),
                                            (Limits(pids=0), "container pids 0: expected a whole number")])
def test_bad_cpus_and_pids(limits, message):
    with pytest.raises(ConfigurationError, match=message):
        limits.host_config()


def test_the_agent_refuses_a_bad_limit_before_it_starts(tmp_path):
    result = run_cli("agent", "--once", "--container-memory", "lots",
                     env={"GITFLOWS_REGISTRY": str(tmp_path / "registry.db")})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "container memory 'lots': expected bytes or a size such as 512m or 2g" in result.stderr
    help_text = run_cli("agent", "--help").stdout
    assert "--container-memory" in help_text and "--container-cpus" in help_text and "--container-pids" in help_text
