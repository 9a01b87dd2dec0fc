"""The exceptions gitflows raises for a user to act on.

Every error derives from :class:`GitflowsError`; users catch the subclasses by
meaning (not found, authentication, rate limited, integrity, incompatible
pickle, configuration). Messages name what was asked and what was found.

No message ever contains a secret: every message passes through the redactor
when the exception is created *and* when it is printed, so a secret resolved
after the exception was made is scrubbed as well.
"""

from __future__ import annotations

from gitflows.redact import redact


class GitflowsError(Exception):
    """Base class of every error gitflows raises for a user to act on."""

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(redact(str(message)), *(redact(str(a)) for a in args))

    def __str__(self) -> str:
        return redact(super().__str__())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigurationError(GitflowsError, ValueError):
    """Bad arguments, settings or serialized data; fix the configuration.

    Also a :class:`ValueError`, as Prefect 1 raised for a bad argument."""


class WrongTypeError(GitflowsError, TypeError):
    """An argument of the wrong type (a :class:`TypeError`, as Prefect 1 raised)."""


class NotFoundError(GitflowsError):
    """Something that was asked for does not exist (or is not visible)."""


class ModuleMissingError(NotFoundError, ModuleNotFoundError):
    """A module to load a flow from cannot be imported (also a :class:`ModuleNotFoundError`)."""

    def __init__(self, message: str = "", name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class RepoNotFoundError(NotFoundError):
    """The repository does not exist, or the credentials cannot see it."""


class RefNotFoundError(NotFoundError):
    """A branch, tag or commit does not exist in the repository."""


class BucketNotFoundError(NotFoundError):
    """The bucket or container does not exist (or the credentials cannot see it)."""


class PathNotFoundError(NotFoundError, FileNotFoundError):
    """A file (script, pickle, module, object) does not exist where it was expected.

    Also a :class:`FileNotFoundError`, as Prefect 1's ``open()`` of a missing file raised."""


class FlowNotFoundError(NotFoundError, ValueError):
    """The requested flow is not among the flows a script or storage holds.

    Also a :class:`ValueError`, as Prefect 1's "Flow is not contained in this Storage"."""


class SecretNotFoundError(NotFoundError, ConfigurationError):
    """A named secret could not be resolved anywhere gitflows looks."""


class AuthenticationError(GitflowsError):
    """The server refused the credentials (bad, expired or missing token)."""


class AccessDeniedError(AuthenticationError):
    """The credentials were accepted but do not allow this (HTTP 403 without a rate limit)."""


class RateLimitedError(GitflowsError):
    """The server's rate limit was hit and did not reset within the bound."""

    def __init__(self, message: str = "", reset_at: float | None = None) -> None:
        super().__init__(message)
        self.reset_at = reset_at


class RemoteError(GitflowsError, RuntimeError):
    """A server kept failing (5xx, timeouts, connection errors) after retries.

    Also a :class:`RuntimeError`, as Prefect 1's Webhook and Bitbucket raised for a failed request."""


class FlowStorageError(GitflowsError):
    """A stored flow could not be loaded (Prefect 1's ``prefect.exceptions.FlowStorageError``)."""


class IntegrityError(FlowStorageError):
    """Content did not match its recorded digest, blob id or signature."""


class IncompatiblePickleError(FlowStorageError):
    """A pickled flow could not be loaded by this Python / library versions."""


class ScriptError(GitflowsError):
    """A flow script could not be parsed or executed."""


class FlowRunError(GitflowsError, ValueError):
    """A flow could not be run (bad parameters, cycle in the graph). Also a :class:`ValueError`."""


class LibraryMissingError(ConfigurationError, ImportError):
    """A backend's optional client library is not installed; the message names the extra to install.

    Also an :class:`ImportError`, as Prefect 1 raised (and still a :class:`ConfigurationError`)."""


class ConfigurationRuntimeError(ConfigurationError, RuntimeError):
    """A configuration problem Prefect 1 reported as a :class:`RuntimeError` (Webhook: an unknown HTTP
    method, a missing ``flow_script_path``, a template variable that is neither an environment variable
    nor a secret). Also a :class:`ValueError`, as every :class:`ConfigurationError`."""


class ObjectExistsError(GitflowsError, FileExistsError):
    """An object already exists under the key and replacing it was not allowed (Azure ``overwrite=False``).

    Also a :class:`FileExistsError`."""


class ImageBuildError(GitflowsError, ValueError):
    """A Docker image failed to build (its healthcheck, a Dockerfile step). Also a :class:`ValueError`, as
    Prefect 1's "Your docker image failed to build!"."""


class ImageTransferError(GitflowsError, InterruptedError):
    """Pulling or pushing a Docker image failed. Also an :class:`InterruptedError`, as Prefect 1 raised."""
