"""``gitflows ui``: a small web page over the registry — flows, versions, runs, logs, graphs, agents.

Needs the ``ui`` extra (``pip install -e '.[ui]'``: Starlette, Jinja2, uvicorn). Server-rendered pages
with a little JavaScript (a run's logs refresh while it runs), assets shipped in the package (no CDN),
graphs drawn by Graphviz on the server. The same data is JSON under ``/api`` (docs/ui.md).
"""

from __future__ import annotations

from typing import Any


def create_app(registry_url: str | None = None, token: str | None = None) -> Any:
    """The ASGI app over the registry at *registry_url*; *token* (a value, not a secret's name) enables actions."""
    from gitflows.ui.app import build

    return build(registry_url, token)
