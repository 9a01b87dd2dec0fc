"""What a running flow's tasks can read: ``gitflows.context.secrets`` (Prefect 1's ``prefect.context.secrets``).

When ``gitflows run`` or an agent loads a flow to run it, every secret its storage names
(``storage.secrets``) is resolved (environment variable, keyring, secrets file: see
:mod:`gitflows.secrets`) and made available two ways for the length of the run:

- ``gitflows.context.secrets["DB_PASSWORD"]`` — a read-only mapping;
- the environment variable of the same name (``os.environ["DB_PASSWORD"]``), for libraries that
  read their credentials from the environment.

Each value is registered with the redactor first, so it is masked in every log line, in the run's
captured output and in whatever is stored about the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping

from gitflows.secrets import resolve_secret


class _Secrets(Mapping[str, str]):
    """A read-only mapping of the secrets resolved for the current run; its repr never shows a value."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            known = ", ".join(sorted(self._values)) or "none"
            raise KeyError(f"secret {name!r} is not available to this run (its storage names: {known}); add it "
                           "to the storage's secrets=[...]") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<secrets: {', '.join(sorted(self._values)) or 'none'}>"


secrets = _Secrets()


class use_secrets:  # noqa: N801 - a context manager
    """``with use_secrets(["DB_PASSWORD"]):`` resolve the named secrets for a run, restore everything after.

    A secret that cannot be resolved raises :class:`~gitflows.errors.SecretNotFoundError` (naming it
    and where it was looked for) before anything runs.
    """

    def __init__(self, names: Iterable[str] | None) -> None:
        self.names = [n for n in (names or []) if n]

    def __enter__(self) -> Mapping[str, str]:
        resolved = {name: resolve_secret(name) for name in self.names}  # all or nothing
        self._saved_env = {name: os.environ.get(name) for name in resolved}
        self._saved_values = dict(secrets._values)
        for name, value in resolved.items():
            os.environ[name] = value
            secrets._values[name] = value
        return secrets

    def __exit__(self, *exc: object) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        secrets._values = self._saved_values
