"""Azure Blob Storage through azure-storage-blob.

The connection string is resolved only when the first request is made. Credentials, as Prefect 1
chose them: a connection string holding ``AccountKey=`` or ``SharedAccessSignature=`` signs the
requests itself; one without either (``BlobEndpoint=...;`` only), or an account URL without a SAS token
(``https://<account>.blob.core.windows.net``), authenticates through Azure's default credential
chain (``azure.identity.DefaultAzureCredential``: environment, workload or managed identity, Azure
CLI, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from gitflows.errors import (
    AuthenticationError,
    BucketNotFoundError,
    ConfigurationError,
    LibraryMissingError,
    NotFoundError,
    ObjectExistsError,
    PathNotFoundError,
)
from gitflows.redact import get_logger, register_secret
from gitflows.remote import HTTPFailure, RetryPolicy, call

T = TypeVar("T")
log = get_logger(__name__)
SIGNING_PARTS = ("accountkey", "sharedaccesssignature")


def connection_string_parts(value: str) -> dict[str, str]:
    """``{"accountname": ..., "blobendpoint": ...}`` from ``Key=value;Key=value`` (keys lower-cased)."""
    parts: dict[str, str] = {}
    for item in value.split(";"):
        name, sep, part = item.strip().partition("=")
        if sep:
            parts[name.strip().lower()] = part.strip()
    return parts


def is_account_url(value: str) -> bool:
    return value.strip().lower().startswith(("https://", "http://")) and ";" not in value


def default_credential(why: str) -> Any:
    """``azure.identity.DefaultAzureCredential()``, as Prefect 1 used for key-less connection strings."""
    try:
        import azure.identity
    except ImportError:
        raise LibraryMissingError(f"{why}, so it authenticates through Azure's default credential chain, which "
                                  "needs azure-identity: pip install -e '.[azure]' in the gitflows checkout (or pip install "
                                  "azure-identity)") from None
    log.debug("authenticating to Azure Blob Storage with DefaultAzureCredential")
    return azure.identity.DefaultAzureCredential()


class AzureStore:
    """One container. ``overwrite=False`` refuses to replace an existing blob, as Prefect 1's default."""

    def __init__(self, container: str, connection_string: Callable[[], str], source: str,
                 overwrite: bool = True, policy: RetryPolicy | None = None) -> None:
        self.container = container
        self._connection_string = connection_string
        self._source = source  # "secret X" / "the connection_string argument", for messages
        self.overwrite = overwrite
        self._policy = policy
        self._client: Any = None
        self._written: dict[str, bytes] = {}  # key -> bytes this store uploaded (one build)

    def label(self) -> str:
        return f"Azure container {self.container!r}"

    def _c(self) -> Any:
        if self._client is None:
            self._client = self._service().get_container_client(self.container)
        return self._client

    def _service(self) -> Any:
        try:
            from azure.storage.blob import BlobServiceClient
        except ImportError:
            raise LibraryMissingError("the Azure storage needs azure-storage-blob:"
                                      " pip install -e '.[azure]' in the gitflows checkout") \
                from None
        value = self._connection_string()
        register_secret(value)
        if is_account_url(value):
            query = value.partition("?")[2]
            register_secret(query)
            _register_sas_signature(query)
            credential = None if "sig=" in query else default_credential(
                f"{self.label()}: {self._source} is an account URL without a SAS token")
            return BlobServiceClient(value.strip(), credential=credential, retry_total=0)
        parts = connection_string_parts(value)
        for name in SIGNING_PARTS:
            register_secret(parts.get(name))
        _register_sas_signature(parts.get("sharedaccesssignature") or "")
        credential = None
        if not any(parts.get(name) for name in SIGNING_PARTS):
            credential = default_credential(f"{self.label()}: the connection string in {self._source} has no "
                                            "AccountKey= or SharedAccessSignature=")
        try:
            return BlobServiceClient.from_connection_string(value, credential=credential, retry_total=0)
        except ValueError:
            raise ConfigurationError(f"{self.label()}: the connection string in {self._source} is not valid (expected "
                                     "'AccountName=...;AccountKey=...', 'BlobEndpoint=...;SharedAccessSignature=...' "
                                     "or an account URL)") from None

    def _call(self, fn: Callable[[], T], key: str, action: str) -> T:
        def wrapped() -> T:
            from azure.core import exceptions as aexc

            try:
                return fn()
            except aexc.ResourceExistsError:
                raise ObjectExistsError(f"{self.label()}: {action} {key!r}: blob {key!r} already exists in container "
                                        f"{self.container!r}; pass overwrite=True to replace it, or choose another "
                                        "blob_name") from None
            except aexc.ResourceNotFoundError as exc:
                code = str(getattr(exc, "error_code", "") or "")
                if code == "ContainerNotFound":
                    raise BucketNotFoundError(f"{self.label()}: {action} {key!r}: the container does not exist") \
                        from None
                raise PathNotFoundError(f"{self.label()}: {action} {key!r}: no such blob") from None
            except aexc.ClientAuthenticationError as exc:
                if getattr(exc, "response", None) is None:  # no token: raised by azure-identity, not the server
                    detail = " ".join(str(getattr(exc, "message", exc)).split())[:600]
                    raise AuthenticationError(f"{self.label()}: {action} {key!r}: no token from Azure's default "
                                              f"credential chain (DefaultAzureCredential), used because {self._source} "
                                              f"holds no key: {detail}") from None
                code = str(getattr(exc, "error_code", "") or "AuthenticationFailed")
                raise AuthenticationError(f"{self.label()}: {action} {key!r}: the server refused the credentials "
                                          f"({code}); check {self._source}") from None
            except aexc.HttpResponseError as exc:
                raise HTTPFailure(exc.status_code, {}, str(getattr(exc, "error_code", "") or exc.reason)) from None
            except (aexc.ServiceRequestError, aexc.ServiceResponseError) as exc:
                # no answer, a reset or a read timeout: retried by the policy, then one RemoteError
                raise HTTPFailure(None, {}, type(exc).__name__) from None

        return call(wrapped, where=self.label(), action=f"{action} {key!r}", not_found=NotFoundError,
                    auth_hint=f"check {self._source}", policy=self._policy)

    def put(self, key: str, data: bytes) -> object:
        """Upload *data* as blob *key*. The same bytes under the same key twice in one build (several flows
        of one script) are uploaded once."""
        if self._written.get(key) == data:
            return None
        log.info("Uploading %s to %s", key, self.container)
        answer = self._call(lambda: self._c().upload_blob(key, data, overwrite=self.overwrite), key, "uploading")
        self._written[key] = data
        return answer

    def get(self, key: str) -> bytes:
        log.info("Downloading %s from %s", key, self.container)
        result: bytes = self._call(lambda: self._c().download_blob(key).readall(), key, "downloading")
        return result


def _register_sas_signature(query: str) -> None:
    """A SAS token's ``sig`` value alone: client libraries log request URLs whose query is reordered."""
    from urllib.parse import parse_qs

    for sig in parse_qs(query.lstrip("?")).get("sig", []):
        register_secret(sig)
