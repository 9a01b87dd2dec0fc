"""Safe names for flows in keys and paths."""

from __future__ import annotations

import datetime as _dt
import re

_UNSAFE = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """``"My ETL / v2"`` -> ``"my-etl-v2"``; never empty, never a path."""
    slug = _UNSAFE.sub("-", str(name).lower()).strip("-")
    return slug[:100] or "flow"


def timestamp() -> str:
    """A UTC timestamp that sorts and is safe in keys: ``20261122T113000123456Z``."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
