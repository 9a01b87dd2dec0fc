"""``Azure``: flows as blobs in an Azure Storage container."""

from __future__ import annotations

import warnings
from typing import Any

from gitflows.blobs import BlobStore
from gitflows.blobs.azure import AzureStore
from gitflows.errors import ConfigurationError, SecretNotFoundError
from gitflows.redact import register_secret
from gitflows.secrets import resolve_secret
from gitflows.storage.blob import BlobStorage

DEFAULT_SECRET = "AZURE_STORAGE_CONNECTION_STRING"


class Azure(BlobStorage):
    """``Azure(container, connection_string_secret=None, blob_name=None, overwrite=False,
    stored_as_script=False, connection_string=None, local_script_path=None, **kwargs)``.

    The connection string comes from the secret named by ``connection_string_secret``, default
    ``AZURE_STORAGE_CONNECTION_STRING`` (resolved through :mod:`gitflows.secrets`). ``connection_string=``
    (the value itself, as Prefect before 0.15.6 took it) is accepted with a warning: it is used in this
    process only, never serialized, and a storage rebuilt from ``serialize()`` reads the default secret.
    A connection string without ``AccountKey=`` / ``SharedAccessSignature=``, or an account URL,
    authenticates through ``DefaultAzureCredential`` (azure-identity), as in Prefect 1.

    ``overwrite=False`` (Prefect's default) refuses to replace an existing blob at ``build()``.
    With ``stored_as_script=True`` and ``local_script_path``, the script is uploaded to ``blob_name``;
    without ``local_script_path`` nothing is uploaded and the script is expected at ``blob_name``, as
    in Prefect 1 (script mode with neither is a ``ValueError`` at ``build()``).
    """

    type_name = "Azure"
    fields = ("container", "connection_string_secret", "blob_name", "overwrite", "local_script_path")
    key_field = "blob_name"

    def __init__(self, container: str, connection_string_secret: str | None = None, blob_name: str | None = None,
                 overwrite: bool = False, stored_as_script: bool = False, connection_string: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(stored_as_script=stored_as_script, **kwargs)
        self.container, self.blob_name = container, blob_name
        self.connection_string_secret = connection_string_secret
        self.overwrite = bool(overwrite)
        self._connection_string_value = connection_string
        if connection_string is not None:
            register_secret(connection_string)
            if connection_string_secret is not None:
                raise ConfigurationError("Azure storage: give connection_string_secret= (a secret name) or "
                                         "connection_string= (the value), not both")
            message = (f"Azure storage for container {container!r}: connection_string= holds the secret value "
                       "itself; it is used in this process only and never serialized (a storage rebuilt from "
                       f"serialize() reads the secret {DEFAULT_SECRET}). Name a secret instead: "
                       f"connection_string_secret={DEFAULT_SECRET!r}")
            warnings.warn(message, UserWarning, stacklevel=2)
            self.logger.warning(message)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a flow whose ``storage`` is this one is pickled with it): without the connection string value."""
        state = self.__dict__.copy()
        state["_connection_string_value"] = None
        return state

    @property
    def connection_string(self) -> str:
        """The connection string (Prefect 1's property): the ``connection_string=`` value, else the secret named
        by ``connection_string_secret``, else the secret ``AZURE_STORAGE_CONNECTION_STRING``."""
        if self._connection_string_value is not None:
            return self._connection_string_value
        name = self.connection_string_secret or DEFAULT_SECRET
        try:
            return resolve_secret(name)
        except SecretNotFoundError as exc:
            how = ("set it, or pass connection_string_secret= naming another secret"
                   if self.connection_string_secret is None else "set it")
            raise SecretNotFoundError(f"Azure connection string not provided for container {self.container!r}: "
                                      f"{exc}; {how}") from None

    def _credentials_source(self) -> str:
        if self._connection_string_value is not None:
            return "the connection_string argument"
        return f"secret {self.connection_string_secret or DEFAULT_SECRET}"

    def make_store(self) -> BlobStore:
        return AzureStore(self.container, lambda: self.connection_string, self._credentials_source(),
                          overwrite=self.overwrite)
