"""Real git servers on 127.0.0.1 for the tests: smart HTTP with token auth, git daemon, sshd."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .git_http import GitHTTPServer, make_bare


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"{what} exited at start (code {proc.returncode}): {out[-500:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def start_http(root: Path, **auth) -> GitHTTPServer:
    return GitHTTPServer(str(root), **auth)


class GitDaemon:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"git://127.0.0.1:{self.port}"
        daemon = shutil.which("git-daemon") or "/usr/lib/git-core/git-daemon"
        if not os.path.exists(daemon):
            pytest.fail("git-daemon is not installed (the git package provides it)")
        self.proc = subprocess.Popen([daemon, "--reuseaddr", "--export-all", f"--base-path={root}", "--listen=127.0.0.1",
                                      f"--port={self.port}", "--informative-errors", str(root)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, "git daemon")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class SSHServer:
    """sshd with key auth for the current user, AcceptEnv GIT_PROTOCOL (protocol v2)."""

    def __init__(self, tmp: Path) -> None:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not os.path.exists(sshd):
            pytest.skip("sshd is not installed (apt-get install openssh-server; .ci/run does)")
        self.dir = tmp
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
        (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
        os.chmod(tmp / "authorized_keys", 0o600)
        self.port = free_port()
        config = tmp / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\n"
            f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin yes\nStrictModes no\n"
            f"AcceptEnv GIT_PROTOCOL\nPidFile {tmp / 'sshd.pid'}\nLogLevel ERROR\n")
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, "sshd")
        host_pub = (tmp / "host_key.pub").read_text().split()
        (tmp / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        self.ssh_command = (f"ssh -i {tmp / 'client_key'} -o UserKnownHostsFile={tmp / 'known_hosts'} "
                            "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes")

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


__all__ = ["GitDaemon", "SSHServer", "free_port", "make_bare", "start_http"]
