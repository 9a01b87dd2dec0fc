"""Safe names for flows in keys and paths."""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata

_UNSAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """python-slugify's defaults, as Prefect 1 used them: accents dropped, lower case, ``1,000`` -> ``1000``,
    every other run of characters outside ``a-z0-9`` -> ``-``. May be empty."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"(?<=\d),(?=\d)", "", text)
    return _UNSAFE.sub("-", text).strip("-")


def slugify(name: str) -> str:
    """``"My ETL / v2"`` -> ``"my-etl-v2"`` (as :func:`slug`); never empty, never a path, at most 100 characters."""
    return slug(name)[:100] or "flow"


def timestamp() -> str:
    """A UTC timestamp that sorts and is safe in keys: ``20261122T113000123456Z``."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
