"""Google Cloud Storage through google-cloud-storage (``STORAGE_EMULATOR_HOST`` is honoured)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from gitflows.errors import AuthenticationError, BucketNotFoundError, ConfigurationError, NotFoundError, PathNotFoundError
from gitflows.redact import redact
from gitflows.remote import HTTPFailure, RetryPolicy, call

T = TypeVar("T")


class GCSStore:
    def __init__(self, bucket: str, project: str | None = None, policy: RetryPolicy | None = None) -> None:
        self.bucket, self.project = bucket, project
        self._policy = policy
        self._bucket: Any = None

    def label(self) -> str:
        return f"GCS bucket {self.bucket!r}" + (f" (project {self.project})" if self.project else "")

    def _b(self) -> Any:
        if self._bucket is None:
            try:
                import google.auth.exceptions
                from google.cloud import storage
            except ImportError:
                raise ConfigurationError("the GCS storage needs google-cloud-storage:"
                                         " pip install -e '.[gcs]' in the gitflows checkout") \
                    from None
            unusable: str | None = None
            try:
                credentials = _secret_credentials()
                if credentials is None:
                    client = storage.Client(project=self.project)
                else:  # Prefect 1's GCP_CREDENTIALS secret
                    client = storage.Client(project=self.project or credentials.project_id, credentials=credentials)
            except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
                unusable = redact(f"{self.label()}: no usable Google credentials ({type(exc).__name__}: {exc})")
            if unusable is not None:
                raise AuthenticationError(unusable)  # outside the handler: the raw key error is not carried
            self._bucket = client.bucket(self.bucket)
        return self._bucket

    def _bucket_missing(self) -> bool:
        """After a 404 (whose message does not say what was missing): does the bucket exist? One request."""
        from google.api_core import exceptions as gexc

        try:
            return self._b().client.lookup_bucket(self.bucket, retry=None) is None
        except gexc.GoogleAPICallError:
            return False  # cannot tell (no storage.buckets.get permission): report the object

    def _call(self, fn: Callable[[], T], key: str, action: str) -> T:
        def wrapped() -> T:
            import google.auth.exceptions
            import requests
            from google.api_core import exceptions as gexc

            try:
                return fn()
            except gexc.NotFound:
                if self._bucket_missing():
                    raise BucketNotFoundError(f"{self.label()}: {action} {key!r}: the bucket does not exist") from None
                raise PathNotFoundError(f"{self.label()}: {action} {key!r}: no such object") from None
            except gexc.GoogleAPICallError as exc:
                raise HTTPFailure(exc.code or 500, {}, str(exc.message)) from None
            except google.auth.exceptions.GoogleAuthError as exc:
                raise AuthenticationError(f"{self.label()}: {action} {key!r}: credentials refused "
                                          f"({type(exc).__name__})") from None
            except requests.RequestException as exc:
                raise HTTPFailure(None, {}, type(exc).__name__) from None

        return call(wrapped, where=self.label(), action=f"{action} {key!r}", not_found=NotFoundError,
                    auth_hint="check GOOGLE_APPLICATION_CREDENTIALS / the service account", policy=self._policy)

    def put(self, key: str, data: bytes) -> object:
        return self._call(lambda: self._b().blob(key).upload_from_string(data, retry=None), key, "uploading")

    def get(self, key: str) -> bytes:
        result: bytes = self._call(lambda: self._b().blob(key).download_as_bytes(retry=None), key, "downloading")
        return result


SECRET_NAME = "GCP_CREDENTIALS"


def _secret_credentials() -> Any:
    """Service account credentials from the ``GCP_CREDENTIALS`` secret (a JSON key file's contents), or None."""
    import json

    from google.oauth2.service_account import Credentials

    from gitflows.redact import register_secret
    from gitflows.secrets import resolve_optional_secret

    raw = resolve_optional_secret(SECRET_NAME)
    if raw is None:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise ConfigurationError(f"secret {SECRET_NAME} must be a service account's JSON key (a JSON object)")
    for field in ("private_key", "private_key_id"):
        if isinstance(info.get(field), str):
            register_secret(info[field])
    try:
        # google-auth ships py.typed but leaves this classmethod unannotated
        return Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
    except (ValueError, KeyError) as exc:
        raise ConfigurationError(f"secret {SECRET_NAME} is not a usable service account key "
                                 f"({type(exc).__name__}: {exc})") from None
