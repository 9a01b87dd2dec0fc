"""Redaction of resolved secret values.

Every secret value gitflows resolves is registered here. :func:`redact` scrubs
them out of any text; :class:`RedactingFilter` does it for log records and is
attached to every gitflows logger by :func:`get_logger`.

This module is safe to use from several threads; it holds only a set of
strings and never logs or prints anything itself.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol
from urllib.parse import quote

MASK = "***"
MIN_LENGTH = 4
_lock = threading.Lock()
_values: tuple[str, ...] = ()


def register_secret(value: str | bytes | None) -> None:
    """Remember *value* (and its URL-quoted form) so it is scrubbed from output."""
    global _values
    if value is None:
        return
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return
    if len(value) < MIN_LENGTH:
        # Masking a 1-3 character value would mangle every message (and hint at the value).
        return
    forms = {value, quote(value, safe=""), quote(value)}
    with _lock:
        merged = set(_values) | {f for f in forms if f}
        # Longest first, so a secret that contains another is masked whole.
        _values = tuple(sorted(merged, key=len, reverse=True))
        _install_record_factory()


def register_basic_auth(username: str | None, password: str | None) -> None:
    """Remember the HTTP Basic form of a credential pair (``base64("user:password")``), which is what
    reaches a ``Authorization: Basic ...`` header (and any log or error that echoes it), and the parts."""
    import base64

    if not username and not password:
        return
    register_secret(password or None)  # a bare token sent as the user name was registered when it was resolved
    pair = f"{username or ''}:{password or ''}".encode()
    register_secret(base64.b64encode(pair).decode())


def forget_secret(value: str) -> None:
    """Stop masking *value* (a resolved value that turned out not to be sensitive, e.g. a clone URL
    without credentials)."""
    global _values
    with _lock:
        _values = tuple(v for v in _values if v != value)


def forget_all() -> None:
    """Forget every registered value (tests use this)."""
    global _values
    with _lock:
        _values = ()


def redact(text: str) -> str:
    """Return *text* with every registered secret value replaced by ``***``, and every base64 run that
    decodes to text holding one (an echoed ``Authorization: Basic base64(user:token)``, whatever the
    user name) too."""
    values = _values
    if not values or not text:
        return text
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    if len(text) >= _B64_MIN and _B64_RUN.search(text):
        text = _B64_RUN.sub(lambda m: MASK if _decodes_to_secret(m.group(0), values) else m.group(0), text)
    return text


_B64_MIN = 8
_B64_RUN = __import__("re").compile(r"[A-Za-z0-9+/]{%d,}={0,2}" % _B64_MIN)


def _decodes_to_secret(run: str, values: tuple[str, ...]) -> bool:
    import base64
    import binascii

    body = run.rstrip("=")
    try:
        decoded = base64.b64decode(body + "=" * (-len(body) % 4)).decode("utf-8", "ignore")
    except (binascii.Error, ValueError):
        return False
    return any(value in decoded for value in values)


class RedactingFilter(logging.Filter):
    """A logging filter that renders the message and scrubs secrets from it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it for logging to report
            return True
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_filter = RedactingFilter()
_factory_installed = False


def _install_record_factory() -> None:
    """Scrub secrets from *every* log record made in this process, including those of libraries
    (PyGithub, urllib3, botocore...) whose loggers gitflows does not own. Only records that
    actually contain a registered value are rewritten."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _values:
            try:
                message = record.getMessage()
            except Exception:
                return record
            scrubbed = redact(message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
            if record.exc_info and record.exc_info[1] is not None:
                text = logging.Formatter().formatException(record.exc_info)
                record.exc_text = redact(text)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def get_logger(name: str) -> logging.Logger:
    """A logger under ``gitflows`` whose records are redacted before any handler sees them."""
    logger = logging.getLogger(name)
    if _filter not in logger.filters:
        logger.addFilter(_filter)
    return logger


class _TextSink(Protocol):
    """What :class:`RedactingStream` writes to: any text stream."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


class RedactingStream:
    """A text stream that scrubs registered secrets from what is written, line by line.

    Output is held until a newline (or ``flush``/``close``) so a secret written in two pieces is
    still masked whole. Writes made below Python (a subprocess writing to the inherited file
    descriptor) do not pass through it.
    """

    def __init__(self, stream: _TextSink) -> None:
        self._stream = stream
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._pending += text
            if "\n" in self._pending:
                done, _, self._pending = self._pending.rpartition("\n")
                self._stream.write(redact(done + "\n"))
                if len(self._pending) > 65536:  # a very long line: do not hold it forever
                    self._stream.write(redact(self._pending))
                    self._pending = ""
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._stream.write(redact(self._pending))
                self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


class redacted_output:  # noqa: N801 - used as a context manager, like contextlib's
    """``with redacted_output():`` — ``sys.stdout`` and ``sys.stderr`` scrub secrets until the block ends."""

    def __enter__(self) -> redacted_output:
        import sys

        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
        return self

    def __exit__(self, *exc: object) -> None:
        import sys

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        sys.stdout, sys.stderr = self._saved
