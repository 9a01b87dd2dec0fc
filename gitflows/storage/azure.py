"""``Azure``: flows as blobs in an Azure Storage container."""

from __future__ import annotations

from typing import Any

from gitflows.blobs import BlobStore
from gitflows.blobs.azure import AzureStore
from gitflows.secrets import resolve_secret
from gitflows.storage.blob import BlobStorage

DEFAULT_SECRET = "AZURE_STORAGE_CONNECTION_STRING"


class Azure(BlobStorage):
    """``Azure(container, connection_string_secret=None, blob_name=None, stored_as_script=False, **kwargs)``.
    The connection string comes from the named secret, default ``AZURE_STORAGE_CONNECTION_STRING``.
    Scripts are uploaded too (Prefect 1 never uploaded them): give ``local_script_path`` or define
    the flow in a script file."""

    type_name = "Azure"
    fields = ("container", "connection_string_secret", "blob_name", "local_script_path")
    key_field = "blob_name"

    def __init__(self, container: str, connection_string_secret: str | None = None, blob_name: str | None = None,
                 stored_as_script: bool = False, **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, **kwargs)
        self.container, self.blob_name = container, blob_name
        self.connection_string_secret = connection_string_secret

    def make_store(self) -> BlobStore:
        name = self.connection_string_secret or DEFAULT_SECRET
        return AzureStore(self.container, lambda: resolve_secret(name), name)
