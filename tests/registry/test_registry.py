"""The registry contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from gitflows.errors import FlowNotFoundError
from gitflows.registry import FlowVersion, open_registry


def version(name="etl", fingerprint="f1", closure=(("flows/etl.py", "a" * 40),), state="pending"):
    return FlowVersion(name=name, version=0, storage={"type": "Git"}, repo="acme/flows", path="flows/etl.py",
                       requested_ref="main", sha="c" * 40, closure=list(closure), fingerprint=fingerprint,
                       labels=[], state=state, registered_at=0.0)


def test_unchanged_flow_gets_no_new_version(registry_url):
    reg = open_registry(registry_url)
    v1, created = reg.register(version())
    assert (v1.version, created) == (1, True)
    same, created = reg.register(version())
    assert (same.version, created) == (1, False)
    v2, created = reg.register(version(closure=(("flows/etl.py", "a" * 40), ("flows/h.py", "b" * 40))))
    assert (v2.version, created) == (2, True)
    v3, _ = reg.register(version(fingerprint="f2", closure=v2.closure))
    assert v3.version == 3
    assert [v.version for v in reg.versions("etl")] == [1, 2, 3]
    assert reg.latest("etl").closure == [("flows/etl.py", "a" * 40), ("flows/h.py", "b" * 40)]
    with pytest.raises(FlowNotFoundError, match="flow 'nope' is not registered .*registered flows: etl"):
        reg.get_version("nope")


def _register_many(url, fingerprints, barrier):
    reg = open_registry(url)
    barrier.wait()
    for fp in fingerprints:
        reg.register(version(fingerprint=fp))


def test_parallel_registrations_never_lose_or_duplicate(registry_url):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(6)
    # every process registers the same unchanged flow, then a fingerprint of its own
    procs = [ctx.Process(target=_register_many, args=(registry_url, ["same", f"own-{i}"], barrier)) for i in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 6
    versions = open_registry(registry_url).versions("etl")
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))  # no gap, no duplicate
    fingerprints = [v.fingerprint for v in versions]
    assert {f"own-{i}" for i in range(6)} <= set(fingerprints)
    # an unchanged registration right after the same fingerprint never adds a version
    assert all(a != b for a, b in zip(fingerprints, fingerprints[1:], strict=False))


def _claim(url, run_ids, barrier, out):
    reg = open_registry(url)
    barrier.wait()
    won = [r for r in run_ids if reg.claim(r, f"agent-{multiprocessing.current_process().name}")]
    out.put(won)


def test_each_run_is_claimed_by_exactly_one_agent(registry_url):
    reg = open_registry(registry_url)
    reg.register(version(state="confirmed"))
    runs = [reg.create_run("etl").id for _ in range(30)]
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(5), ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(registry_url, runs, barrier, out)) for _ in range(5)]
    for p in procs:
        p.start()
    won = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    flat = sorted(r for w in won for r in w)
    assert flat == sorted(runs)


def test_expired_lease_reschedules_then_loses(registry_url):
    reg = open_registry(registry_url)
    reg.register(version(state="confirmed"))
    run = reg.create_run("etl", parameters={"n": 1})
    assert run.max_attempts == 2 and run.parameters == {"n": 1}
    assert reg.claim(run.id, "a1")
    time.sleep(0.3)
    assert reg.reap(lease=0.1) == [(run.id, "scheduled")]
    assert reg.get_run(run.id).state == "scheduled"
    assert reg.claim(run.id, "a2") and not reg.claim(run.id, "a3")
    assert not reg.heartbeat(run.id, "a1")  # the first agent no longer owns it
    time.sleep(0.3)
    assert reg.reap(lease=0.1) == [(run.id, "lost")]
    lost = reg.get_run(run.id)
    assert lost.state == "lost" and "no attempts left" in lost.error
    assert not reg.finish(run.id, "a2", "success")  # a late finish is refused
