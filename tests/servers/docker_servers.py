"""A container registry (Debian's docker-registry) and a Docker daemon, both on this machine only,
plus a Python base image made from Debian packages (debootstrap, cached between runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .fixtures import free_port, wait_for_port

CACHE = Path(os.environ.get("GITFLOWS_TEST_CACHE", os.path.expanduser("~/.cache/gitflows-tests")))
BASE_TAR = CACHE / "bookworm-python3-rootfs.tar"


class Registry:
    def __init__(self, tmp: Path, username: str | None = None, password: str | None = None,
                 token_auth: str = "") -> None:
        """*token_auth*: the ``auth:`` section of a token service (tests/servers/token_auth.py) instead of
        htpasswd."""
        binary = shutil.which("docker-registry")
        if binary is None:
            pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        auth = token_auth
        if username and not token_auth:
            import bcrypt

            (tmp / "htpasswd").write_text(f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n")
            auth = f"auth:\n  htpasswd:\n    realm: gitflows-tests\n    path: {tmp / 'htpasswd'}\n"
        config = tmp / "registry.yml"
        config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
                          f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{self.port}\n{auth}")
        # its access log goes to a file: a pipe nobody reads fills after ~670 requests and the registry blocks
        self.log = tmp / "registry.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, self.proc, "docker-registry")
        except BaseException:
            print(self.log.read_text(errors="replace")[-4000:])
            raise

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Dockerd:
    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not os.path.exists(binary):
            pytest.skip("dockerd is not installed (apt-get install docker.io)")
        self.socket = tmp / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.proc = subprocess.Popen(
            [binary, "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
             f"--data-root={tmp / 'data'}", f"--exec-root={tmp / 'exec'}", f"--pidfile={tmp / 'docker.pid'}",
             "-H", self.url, "--insecure-registry=127.0.0.0/8"],
            stdout=open(tmp / "dockerd.log", "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        import docker

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"dockerd exited: {(tmp / 'dockerd.log').read_text()[-1000:]}")
            try:
                docker.APIClient(base_url=self.url).ping()
                return
            except Exception:  # noqa: BLE001
                time.sleep(0.2)
        pytest.fail("dockerd did not answer within 60s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def base_rootfs_tar() -> Path:
    """A Debian bookworm root filesystem with python3 and venv, from Debian's packages (cached)."""
    if BASE_TAR.exists():
        return BASE_TAR
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.exists(debootstrap):
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")
    CACHE.mkdir(parents=True, exist_ok=True)
    root = CACHE / f"rootfs-{os.getpid()}"
    subprocess.run([debootstrap, "--variant=minbase", "--include=python3,python3-venv", "bookworm", str(root),
                    "http://deb.debian.org/debian"], check=True, capture_output=True)
    tmp = BASE_TAR.with_suffix(".tmp")
    subprocess.run(["tar", "-C", str(root), "-cf", str(tmp), "."], check=True)
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, BASE_TAR)
    return BASE_TAR


def wheelhouse(dest: Path) -> Path:
    """gitflows (built from this checkout) and its dependencies as wheels, for an image with no package index."""
    repo = Path(__file__).resolve().parents[2]
    dest.mkdir(parents=True, exist_ok=True)
    pip = os.path.join(os.path.dirname(os.sys.executable), "pip")
    # the same versions as here: a pickle made here must load there
    frozen = subprocess.run([pip, "freeze", "--exclude-editable"], capture_output=True, text=True, check=True).stdout
    constraints = dest.parent / "constraints.txt"
    constraints.write_text("\n".join(line for line in frozen.splitlines() if "==" in line) + "\n")
    out = subprocess.run([pip, "wheel", "-q", "--wheel-dir", str(dest), "-c", str(constraints), str(repo)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"building the wheelhouse failed: {out.stderr[-2000:]}")
    return dest
