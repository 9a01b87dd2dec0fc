"""Building the image: the Dockerfile for a daemon, and OCI layers for a daemonless build."""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import tarfile
import time
from collections.abc import Mapping
from typing import Any

from gitflows.docker.registry import MANIFEST_TYPES, RegistryClient, sha256
from gitflows.errors import ConfigurationError, PathNotFoundError

FLOWS_LABEL = "io.gitflows.flows"
VENV = "/opt/gitflows-venv"


def env_line(env_vars: Mapping[str, Any]) -> str:
    """One ``ENV`` instruction; each value double-quoted and taken literally (no ``$VAR`` expansion)."""
    if not env_vars:
        return ""
    parts = []
    for key, value in env_vars.items():
        quoted = json.dumps(str(value), ensure_ascii=False)[1:-1].replace("$", "\\$")
        parts.append(f'{key}="{quoted}"')
    return "ENV " + " \\\n    ".join(parts)


def dockerfile(base_commands: str, env_vars: Mapping[str, Any], python_dependencies: list[str], wheels: str | None,
               gitflows_requirement: str, copies: list[tuple[str, str]], extra_commands: list[str],
               healthcheck: dict[str, Any] | None, gitflows_wheel: str | None = None) -> str:
    """The Dockerfile text, in Prefect 1's order: the base (``FROM`` or the user's Dockerfile), ``ENV``, the
    installs, the flows and files copied in, the user's extra commands, the healthcheck. ``RUN`` and ``COPY``
    use the exec (JSON) form: no shell quoting surprises, paths with spaces work."""
    python = f"{VENV}/bin/python"
    install = [python, "-m", "pip", "install", "--no-cache-dir"]
    lines = [base_commands.rstrip("\n"), ""]
    if env_vars:
        lines.append(env_line(env_vars))
    lines.append(f'RUN ["python3", "-m", "venv", "{VENV}"]')
    lines.append(f"ENV PATH={VENV}/bin:$PATH")
    if wheels:
        lines.append(f"COPY {json.dumps([wheels, '/opt/gitflows-wheels'])}")
        install += ["--no-index", "--find-links", "/opt/gitflows-wheels"]
    if gitflows_wheel:  # the checkout's own wheel; its dependencies may come from the index
        target = f"/opt/gitflows-wheel/{gitflows_wheel.rsplit('/', 1)[-1]}"
        lines.append(f"COPY {json.dumps([gitflows_wheel, target])}")
        gitflows_requirement = target
    lines.append(f"RUN {json.dumps(install + [gitflows_requirement])}")
    if python_dependencies:
        lines.append(f"RUN {json.dumps(install + list(python_dependencies))}")
    lines.append("")
    for source, target in copies:
        lines.append(f"COPY {json.dumps([source, target])}")
    lines.append("")
    lines.extend(extra_commands)
    if healthcheck is not None:
        lines.append(f"RUN {json.dumps([python, '-m', 'gitflows.docker.healthcheck', json.dumps(healthcheck)])}")
    return "\n".join(lines) + "\n"


def in_image(path: str, workdir: str | None) -> str:
    """An image path as Docker's ``COPY`` reads it: relative paths are under the image's working directory."""
    full = posixpath.normpath(posixpath.join(workdir or "/", path))
    return "/" + full.lstrip("/")


def layer(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """A gzipped, reproducible tar layer of *files* (absolute image paths); returns (blob, diff id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for path in sorted(files):
            if not path.startswith("/") or ".." in path.split("/"):
                raise ConfigurationError(f"image path {path!r} must be absolute and must not contain '..'")
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                    tar.addfile(info)
            info = tarfile.TarInfo("/".join(parts))
            info.size, info.mode, info.mtime = len(files[path]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[path]))
    data = raw.getvalue()
    return gzip.compress(data, mtime=0), sha256(data)


def push_daemonless(base: RegistryClient, base_repo: str, base_ref: str, target: RegistryClient, repo: str, tag: str,
                    files: Mapping[str, bytes], labels: Mapping[str, str], env: Mapping[str, str]) -> str:
    """Push base image + one new layer with *files* as repo:tag; returns the manifest digest. Relative paths
    in *files* are under the base image's working directory, as with ``COPY``."""
    manifest, _, _ = base.manifest(base_repo, base_ref)
    config = json.loads(base.blob(base_repo, manifest["config"]["digest"]))
    workdir = (config.get("config") or {}).get("WorkingDir")
    files = {in_image(path, workdir): data for path, data in files.items()}
    same_registry = base.url == target.url
    for item in manifest["layers"]:
        if same_registry:
            if not target.has_blob(repo, item["digest"]):
                mounted = target._request("POST", f"/v2/{repo}/blobs/uploads/",
                                          params={"mount": item["digest"], "from": base_repo})
                if mounted.status_code != 201:
                    target.put_blob(repo, base.blob(base_repo, item["digest"]))
        else:
            target.put_blob(repo, base.blob(base_repo, item["digest"]))
    blob, diff_id = layer(files)
    target.put_blob(repo, blob)
    cfg = config.setdefault("config", {})
    cfg["Labels"] = {**(cfg.get("Labels") or {}), **labels}
    cfg["Env"] = [*(cfg.get("Env") or []), *(f"{k}={v}" for k, v in env.items())]
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(diff_id)
    config.setdefault("history", []).append({"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                             "created_by": "gitflows daemonless build: flows layer"})
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    target.put_blob(repo, config_bytes)
    oci = manifest.get("mediaType", MANIFEST_TYPES[1]) == MANIFEST_TYPES[0]
    layer_type = "application/vnd.oci.image.layer.v1.tar+gzip" if oci else \
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    new = {"schemaVersion": 2, "mediaType": MANIFEST_TYPES[0] if oci else MANIFEST_TYPES[1],
           "config": {"mediaType": manifest["config"]["mediaType"], "size": len(config_bytes),
                      "digest": sha256(config_bytes)},
           "layers": [*manifest["layers"], {"mediaType": layer_type, "size": len(blob), "digest": sha256(blob)}]}
    return target.put_manifest(repo, tag, new)


def read_file(client: RegistryClient, repo: str, digest: str, path: str) -> bytes:
    """The file at *path* in image repo@digest (top layer first), fetched and verified by digest. A relative
    *path* is under the image's working directory."""
    manifest, _, _ = client.manifest(repo, digest)
    if not path.startswith("/"):
        config = json.loads(client.blob(repo, manifest["config"]["digest"]))
        path = in_image(path, (config.get("config") or {}).get("WorkingDir"))
    wanted = path.strip("/")
    for item in reversed(manifest["layers"]):
        data = client.blob(repo, item["digest"])
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.name.strip("./") == wanted and member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    return extracted.read()
    raise PathNotFoundError(f"{client.label()}: {path} is not in {repo}@{digest}")
