"""What a run ended with, and the bounded output tail every runner keeps (core: runners of every layer
use them)."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_LOG = 200_000


@dataclass
class RunResult:
    """What a run ended with: ``state`` is "success" or "failed"; ``logs`` the (redacted) tail of its output."""

    state: str
    error: str | None = None
    logs: str = ""
    returncode: int | None = None
    tasks: dict[str, str] = field(default_factory=dict)
    lost: bool = False  # stopped because the run was no longer this process's to run

    def is_successful(self) -> bool:
        return self.state == "success"


class Tail:
    """Keeps the last *limit* characters written (a run that prints 50 MB costs *limit*, not 50 MB)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > 2 * self.limit:
            joined = "".join(self.parts)[-self.limit:]
            self.parts, self.size = [joined], len(joined)

    def text(self) -> str:
        return "".join(self.parts)[-self.limit:]


