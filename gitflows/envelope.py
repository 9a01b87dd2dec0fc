"""The pickle envelope: a cloudpickled flow behind a small, verified header.

Layout (bytes)::

    GITFLOWS-PICKLE\\n
    {"format": 1, "python": "3.11.7", "cloudpickle": "3.0.0", "gitflows": "0.1.0",
     "flow": "etl", "size": 1234, "sha256": "...", "hmac": "..."}\\n
    <cloudpickle payload>

Unpickling runs code, so :func:`flow_from_bytes_pickle` checks the size and
sha256 of the payload — and its HMAC-SHA256 when a signing key is configured —
*before* cloudpickle sees a byte. A signing key is a secret: pass its name as
``signing_key_secret`` or set ``GITFLOWS_SIGNING_KEY_SECRET`` to the name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
from typing import Any

from gitflows.errors import ConfigurationError, IncompatiblePickleError, IntegrityError
from gitflows.flow import Flow
from gitflows.secrets import resolve_secret
from gitflows.version import __version__

MAGIC = b"GITFLOWS-PICKLE\n"
FORMAT = 1
MAX_HEADER = 64 * 1024
SIGNING_KEY_ENV = "GITFLOWS_SIGNING_KEY_SECRET"


def _signing_key(secret_name: str | None) -> bytes | None:
    name = secret_name or os.environ.get(SIGNING_KEY_ENV)
    return resolve_secret(name).encode() if name else None


def _versions() -> dict[str, str]:
    import cloudpickle

    return {"python": platform.python_version(), "cloudpickle": cloudpickle.__version__, "gitflows": __version__}


def _mac(key: bytes, header: dict[str, Any]) -> str:
    unsigned = {k: v for k, v in header.items() if k != "hmac"}
    message = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def flow_to_bytes_pickle(flow: Flow, signing_key_secret: str | None = None) -> bytes:
    """Serialize *flow* with cloudpickle inside a verified envelope (signed when a key is configured)."""
    import cloudpickle

    payload: bytes = cloudpickle.dumps(flow)  # cloudpickle is untyped: its dumps returns bytes
    header: dict[str, Any] = {"format": FORMAT, **_versions(), "flow": getattr(flow, "name", None),
                              "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    key = _signing_key(signing_key_secret)
    if key is not None:
        header["hmac"] = _mac(key, header)
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def read_header(data: bytes, where: str = "pickle") -> tuple[dict[str, Any], bytes]:
    """Split an envelope into its header and payload, checking the layout (not the digest)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise IntegrityError(f"{where}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise IntegrityError(f"{where} is not a gitflows pickle envelope (no header); refusing to unpickle "
                             "unverified data")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEADER)
    if end < 0:
        raise IntegrityError(f"{where}: envelope header is truncated or corrupt")
    try:
        header = json.loads(data[len(MAGIC):end])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise IntegrityError(f"{where}: envelope header is not valid JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("sha256"), str):
        raise IntegrityError(f"{where}: envelope header lacks a sha256 digest")
    if header.get("format") != FORMAT:
        raise IncompatiblePickleError(f"{where}: envelope format {header.get('format')!r} is not supported by "
                                      f"gitflows {__version__} (reads format {FORMAT})")
    return header, data[end + 1:]


def verify(data: bytes, signing_key_secret: str | None = None, where: str = "pickle") -> tuple[dict[str, Any], bytes]:
    """Check an envelope's size, sha256 and (with a key configured) its HMAC; return header and payload."""
    header, payload = read_header(data, where)
    if header.get("size") != len(payload):
        raise IntegrityError(f"{where}: payload is {len(payload)} bytes, the header says {header.get('size')} "
                             "(truncated or altered)")
    digest = hashlib.sha256(payload).hexdigest()
    if not hmac.compare_digest(digest, header["sha256"]):
        raise IntegrityError(f"{where}: payload sha256 {digest} does not match the header's {header['sha256']}")
    key = _signing_key(signing_key_secret)
    if key is not None:
        mac = header.get("hmac")
        if not isinstance(mac, str):
            raise IntegrityError(f"{where}: unsigned pickle refused (a signing key is configured)")
        if not hmac.compare_digest(mac, _mac(key, header)):
            raise IntegrityError(f"{where}: signature does not match (wrong key or altered pickle)")
    return header, payload


def flow_from_bytes_pickle(data: bytes, signing_key_secret: str | None = None, where: str = "pickle") -> Flow:
    """Verify an envelope, then unpickle the flow. Version mismatches that break loading name both sides."""
    import cloudpickle

    header, payload = verify(data, signing_key_secret, where)
    ours = _versions()
    theirs = {k: header.get(k) for k in ours}
    try:
        flow = cloudpickle.loads(payload)
    except Exception as exc:
        sides = (f"pickled with Python {theirs['python']}, cloudpickle {theirs['cloudpickle']}, gitflows "
                 f"{theirs['gitflows']}; loading with Python {ours['python']}, cloudpickle "
                 f"{ours['cloudpickle']}, gitflows {ours['gitflows']}")
        parts = [f"An error occurred while unpickling the flow {header.get('flow')!r} from {where}: "
                 f"{type(exc).__name__}: {exc}; {sides}"]
        if theirs != ours:
            parts.append("This may be due to the version mismatches between the build and the run environments: "
                         "re-register the flow from this environment.")
        if isinstance(exc, ImportError):
            parts.append("This may be due to a missing Python module in this environment: install the flow's "
                         "dependencies here.")
        raise IncompatiblePickleError(" ".join(parts)) from exc
    if not isinstance(flow, Flow):
        raise IncompatiblePickleError(f"{where}: payload is a {type(flow).__name__}, not a gitflows Flow")
    return flow


def sha256_of(data: bytes) -> str:
    """The digest a storage records at build for what it stored (``digests[flow name]``)."""
    return hashlib.sha256(data).hexdigest()


def check_recorded_digest(data: bytes, expected: str | None, where: str) -> None:
    """Refuse *data* (IntegrityError naming *where*) when a digest was recorded and it differs; call it before
    unpickling or executing anything."""
    if expected is None:
        return
    actual = sha256_of(data)
    if not hmac.compare_digest(actual, expected):
        raise IntegrityError(f"{where}: content sha256 {actual} does not match the recorded {expected} (it was "
                             "changed after it was stored); refusing to load it")


def restore_digests(data: dict[str, Any], type_name: str) -> dict[str, str]:
    """The ``digests`` of a serialized storage (flow name -> sha256), checked."""
    digests = data.get("digests") or {}
    if not isinstance(digests, dict) or not all(isinstance(v, str) for v in digests.values()):
        raise ConfigurationError(f"serialized {type_name} storage: 'digests' must map flow names to sha256")
    return {str(k): v for k, v in digests.items()}
