"""What the blob storages (S3, GCS, Azure, Webhook) share.

``add_flow`` records where a flow will live: the key the user gave, else Prefect 1's generated key
(:func:`generated_key`). ``build()`` uploads every added flow — the pickle envelope, or with
``stored_as_script=True`` the local script the user named (``local_script_path``; never a file
guessed from where a task was defined) — and records the sha256 of what it uploaded. In script mode
without a local script nothing is uploaded: the script is expected at the user's key (Prefect 1),
and without a key that is an error naming the flows. ``get_flow`` downloads, checks that sha256
(and the envelope's own digest and signature) *before* unpickling or executing anything, then loads
through the same code as every other backend (:mod:`gitflows.envelope`, :mod:`gitflows.script`).

Subclass hooks: ``make_store``, ``key_field``, ``given_key``, ``script_needs_key``, ``script_field``,
``script_to_upload``, ``_no_script_to_upload``, ``_payload``, ``_after_upload``.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

from gitflows.blobs import BlobStore, safe_key
from gitflows.envelope import check_recorded_digest, flow_to_bytes_pickle, restore_digests, sha256_of
from gitflows.errors import ConfigurationError, PathNotFoundError
from gitflows.flow import Flow
from gitflows.naming import slug
from gitflows.storage.base import Storage


class BlobStorage(Storage):
    """Base of the storages that keep each flow as one object under a key."""

    #: the attribute holding the key given by the user ("key", or "blob_name" for Azure)
    key_field: ClassVar[str] = "key"
    #: whether, in script mode without a local script, a key given by the user names a script they uploaded
    #: themselves (Prefect 1: yes for S3 and GCS; Webhook has no user key)
    script_needs_key: ClassVar[bool] = True
    #: the constructor argument naming the local script to upload, for messages ("flow_script_path" for Webhook)
    script_field: ClassVar[str] = "local_script_path"

    def __init__(self, stored_as_script: bool = False, local_script_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, **kwargs)
        self.local_script_path = local_script_path
        self.digests: dict[str, str] = {}  # flow name -> sha256 of the uploaded bytes

    def make_store(self) -> BlobStore:
        raise NotImplementedError

    @property
    def given_key(self) -> str | None:
        key: str | None = getattr(self, self.key_field)  # a constructor argument typed str | None
        return key

    def _location_for(self, flow: Flow) -> str:
        return safe_key(self.given_key) if self.given_key else generated_key(flow.name)

    @property
    def script_to_upload(self) -> str | None:
        """The local script ``build()`` uploads in script mode (``local_script_path``), if any."""
        return self.local_script_path

    def _no_script_to_upload(self) -> None:
        """Script mode without a local script: Prefect 1 uploaded nothing and expected the user to have put
        the script at ``key`` themselves; without a key there is nowhere to load it from."""
        if self.given_key and self.script_needs_key:
            self.logger.info("%s storage: no %s; not uploading, the script is expected at %s",
                             self.type_name, self.script_field, self.given_key)
            return
        names = ", ".join(repr(n) for n in self._flows) or "none added yet"
        alternative = f" or {self.key_field}= (where you uploaded the script yourself)" if self.script_needs_key else ""
        raise ConfigurationError(f"{self.type_name} storage (flows: {names}): stored_as_script=True needs "
                                 f"{self.script_field}= (a local script to upload){alternative}")

    def _payload(self, name: str) -> bytes:
        """The bytes ``build()`` uploads for flow *name*: its pickle envelope, or the local script."""
        if not self.stored_as_script:
            return flow_to_bytes_pickle(self._flows[name])
        script = self.script_to_upload
        if script is None:
            raise ConfigurationError(f"{self.type_name} storage: no script to upload for flow {name!r}; pass "
                                     f"{self.script_field}=")
        try:
            with open(script, "rb") as fh:
                return fh.read()
        except (FileNotFoundError, IsADirectoryError):
            raise PathNotFoundError(f"{self.type_name} storage: {self.script_field} {script} for flow {name!r} does "
                                    "not exist (or is not a file)") from None

    def build(self) -> BlobStorage:
        """Upload every added flow; record the sha256 of each upload."""
        self.run_basic_healthchecks()
        if self.stored_as_script and not self.script_to_upload:
            self._no_script_to_upload()
            return self
        store = self.make_store()
        for name, key in self.flows.items():
            if name not in self._flows:
                continue  # rebuilt from serialized form: already uploaded
            data = self._payload(name)
            answer = store.put(key, data)
            self.digests[name] = sha256_of(data)
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
        check_recorded_digest(data, self.digests.get(name) if name else None, where)
        return self._from_bytes(data, name, where)

    def serialize(self) -> dict[str, Any]:
        data = super().serialize()
        data["digests"] = dict(self.digests)
        return data

    def restore(self, data: dict[str, Any]) -> None:
        self.digests = restore_digests(data, self.type_name)


def generated_key(flow_name: str) -> str:
    """Prefect 1's key for a flow without ``key=``: ``slugify(flow name)/slugify(UTC now, ISO 8601)``,
    e.g. ``my-flow/2026-12-02t06-12-05-123456-00-00``."""
    return f"{slug(flow_name) or 'flow'}/{slug(datetime.datetime.now(datetime.UTC).isoformat())}"
