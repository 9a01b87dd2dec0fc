"""Azure Blob Storage through azure-storage-blob; the connection string comes from a secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from gitflows.errors import AuthenticationError, BucketNotFoundError, ConfigurationError, NotFoundError, PathNotFoundError
from gitflows.hosts.http import HTTPFailure, RetryPolicy, call

T = TypeVar("T")


class AzureStore:
    def __init__(self, container: str, connection_string: Callable[[], str], secret_name: str,
                 policy: RetryPolicy | None = None) -> None:
        self.container = container
        self._connection_string = connection_string
        self._secret_name = secret_name
        self._policy = policy
        self._client: Any = None

    def label(self) -> str:
        return f"Azure container {self.container!r}"

    def _c(self) -> Any:
        if self._client is None:
            try:
                from azure.storage.blob import BlobServiceClient
            except ImportError:
                raise ConfigurationError("the Azure storage needs azure-storage-blob: pip install 'gitflows[azure]'") \
                    from None
            try:
                service = BlobServiceClient.from_connection_string(self._connection_string(), retry_total=0)
            except ValueError:
                raise ConfigurationError(f"{self.label()}: the connection string in secret {self._secret_name} "
                                         "is not valid") from None
            self._client = service.get_container_client(self.container)
        return self._client

    def _call(self, fn: Callable[[], T], key: str, action: str) -> T:
        def wrapped() -> T:
            from azure.core import exceptions as aexc

            try:
                return fn()
            except aexc.ResourceNotFoundError as exc:
                code = str(getattr(exc, "error_code", "") or "")
                if code == "ContainerNotFound":
                    raise BucketNotFoundError(f"{self.label()}: {action} {key!r}: the container does not exist") \
                        from None
                raise PathNotFoundError(f"{self.label()}: {action} {key!r}: no such blob") from None
            except aexc.ClientAuthenticationError as exc:
                code = str(getattr(exc, "error_code", "") or "AuthenticationFailed")
                raise AuthenticationError(f"{self.label()}: {action} {key!r}: the server refused the credentials "
                                          f"({code}); check secret {self._secret_name}") from None
            except aexc.HttpResponseError as exc:
                raise HTTPFailure(exc.status_code, {}, str(getattr(exc, "error_code", "") or exc.reason)) from None
            except aexc.ServiceRequestError as exc:
                raise HTTPFailure(None, {}, type(exc).__name__) from None

        return call(wrapped, where=self.label(), action=f"{action} {key!r}", not_found=NotFoundError,
                    auth_hint=f"check secret {self._secret_name}", policy=self._policy)

    def put(self, key: str, data: bytes) -> object:
        return self._call(lambda: self._c().upload_blob(key, data, overwrite=True), key, "uploading")

    def get(self, key: str) -> bytes:
        result: bytes = self._call(lambda: self._c().download_blob(key).readall(), key, "downloading")
        return result
