"""What the blob storages (S3, GCS, Azure, Webhook) share.

``add_flow`` records where a flow will live (a key); ``build()`` uploads every added flow — the
pickle envelope, or the script itself with ``stored_as_script=True`` — and records the sha256 of
what it uploaded; ``get_flow`` downloads, checks that sha256 (and the envelope's own digest and
signature) *before* unpickling or executing anything, then loads through the same code as every
other backend (:mod:`gitflows.envelope`, :mod:`gitflows.script`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any, ClassVar

from gitflows.blobs import BlobStore, safe_key
from gitflows.envelope import flow_to_bytes_pickle
from gitflows.errors import ConfigurationError, IntegrityError, PathNotFoundError
from gitflows.flow import Flow
from gitflows.naming import slugify, timestamp
from gitflows.storage.base import Storage


class BlobStorage(Storage):
    """Base of the storages that keep each flow as one object under a key."""

    #: the attribute holding the key given by the user ("key", or "blob_name" for Azure)
    key_field: ClassVar[str] = "key"
    #: whether stored_as_script needs an explicit key (Prefect 1: yes, except Webhook)
    script_needs_key: ClassVar[bool] = True

    def __init__(self, stored_as_script: bool = False, local_script_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, **kwargs)
        self.local_script_path = local_script_path
        self.digests: dict[str, str] = {}  # flow name -> sha256 of the uploaded bytes
        self._scripts: dict[str, str] = {}  # flow name -> local script to upload

    def make_store(self) -> BlobStore:
        raise NotImplementedError

    @property
    def given_key(self) -> str | None:
        return getattr(self, self.key_field)

    def _location_for(self, flow: Flow) -> str:
        if self.given_key:
            key = safe_key(self.given_key)
        elif self.stored_as_script and self.script_needs_key:
            raise ConfigurationError(f"{self.type_name} storage for flow {flow.name!r}: stored_as_script=True needs "
                                     f"{self.key_field}= (where the script is stored)")
        else:
            key = f"{slugify(flow.name)}/{timestamp()}"
        if self.stored_as_script:
            script = self.local_script_path or _script_of(flow)
            if script is not None:
                self._scripts[flow.name] = script
        return key

    def _payload(self, name: str) -> bytes:
        if not self.stored_as_script:
            return flow_to_bytes_pickle(self._flows[name])
        script = self._scripts.get(name)
        if script is None:
            raise ConfigurationError(f"{self.type_name} storage: no script to upload for flow {name!r}; pass "
                                     "local_script_path=")
        try:
            with open(script, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise PathNotFoundError(f"{self.type_name} storage: script {script} for flow {name!r} does not exist") \
                from None

    def build(self) -> BlobStorage:
        """Upload every added flow; record the sha256 of each upload."""
        self.run_basic_healthchecks()
        store = self.make_store()
        for name, key in self.flows.items():
            if name not in self._flows:
                continue  # rebuilt from serialized form: already uploaded
            data = self._payload(name)
            answer = store.put(key, data)
            self.digests[name] = hashlib.sha256(data).hexdigest()
            self._after_upload(name, answer)
        return self

    def _after_upload(self, name: str, answer: object) -> None:
        """Keep what the store answered (Webhook keeps the responses)."""

    @property
    def own_location(self) -> str | None:
        return self.given_key

    def _load(self, name: str | None, location: str) -> Flow:
        key = safe_key(location)
        store = self.make_store()
        data = store.get(key)
        where = f"{store.label()}: {key}"
        expected = self.digests.get(name) if name else None
        if expected is not None:
            actual = hashlib.sha256(data).hexdigest()
            if not hmac.compare_digest(actual, expected):
                raise IntegrityError(f"{where}: content sha256 {actual} does not match the recorded {expected} "
                                     "(the object was changed after it was uploaded); refusing to load it")
        return self._from_bytes(data, name, where)

    def serialize(self) -> dict[str, Any]:
        data = super().serialize()
        data["digests"] = dict(self.digests)
        return data

    def restore(self, data: dict[str, Any]) -> None:
        digests = data.get("digests") or {}
        if not isinstance(digests, dict):
            raise ConfigurationError(f"serialized {self.type_name} storage: 'digests' must map flow names to sha256")
        self.digests = {str(k): str(v) for k, v in digests.items()}


def _script_of(flow: Flow) -> str | None:
    """The file a flow was defined in, when it came from a script on disk."""
    for task in flow.tasks:
        fn = getattr(task, "fn", None)
        filename = getattr(getattr(fn, "__code__", None), "co_filename", None)
        if filename and os.path.isfile(filename):
            return str(filename)
    return None
