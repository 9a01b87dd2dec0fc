"""The hosts' fixtures, shared: ``rsps`` (a responses mock) and ``source`` (a real repository)."""

from ..hosts.conftest import rsps, source  # noqa: F401
