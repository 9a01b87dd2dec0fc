"""Schedules, as Prefect 1 flows had them: ``Flow("etl", schedule=...)``.

A :class:`Schedule` holds clocks; each clock yields the times a run is due and the parameter values
for runs at those times:

* :class:`IntervalClock` — every ``interval`` from ``start_date`` (a fixed grid: slots do not drift
  with agent timing);
* :class:`CronClock` — a cron expression (``croniter``, a maintained parser) evaluated in the time
  zone of ``start_date`` (or ``timezone``), so ``0 9 * * *`` stays 09:00 local across daylight saving.

``IntervalSchedule`` and ``CronSchedule`` are Prefect 1's one-clock shorthands. A schedule is recorded
with the flow's registration (:meth:`Schedule.to_dict`); agents turn due slots into runs exactly once
per slot, however many agents run (a uniqueness rule in the registry). After downtime, missed slots
are skipped — only those within ``max_lateness`` are created — unless ``catch_up=True``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from gitflows.errors import ConfigurationError, GitflowsError

UTC = dt.timezone.utc
EPOCH = dt.datetime(2020, 1, 1, tzinfo=UTC)


def _aware(value: dt.datetime | None, zone: str | None) -> dt.datetime:
    if value is None:
        return EPOCH
    if value.tzinfo is None:
        return value.replace(tzinfo=ZoneInfo(zone) if zone else UTC)
    return value


@dataclass
class Slot:
    """One due time of one clock: a run is created for it at most once."""

    at: dt.datetime
    clock: int
    parameters: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.clock}@{self.at.astimezone(UTC).isoformat()}"


@dataclass
class IntervalClock:
    interval: dt.timedelta
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    parameter_defaults: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.interval, dt.timedelta) or self.interval.total_seconds() <= 0:
            raise ConfigurationError(f"IntervalClock: interval must be a positive timedelta, got {self.interval!r}")

    def times(self, after: dt.datetime) -> Iterator[dt.datetime]:
        """Due times strictly after *after*, in order."""
        start = _aware(self.start_date, None)
        step = self.interval.total_seconds()
        elapsed = (after - start).total_seconds()
        n = 0 if elapsed < 0 else int(elapsed // step) + 1
        while True:
            at = start + dt.timedelta(seconds=n * step)
            if self.end_date is not None and at > _aware(self.end_date, None):
                return
            if at > after:
                yield at
            n += 1

    def to_dict(self) -> dict[str, Any]:
        return {"type": "IntervalClock", "interval": self.interval.total_seconds(),
                "start_date": _iso(self.start_date), "end_date": _iso(self.end_date),
                "parameter_defaults": self.parameter_defaults}


@dataclass
class CronClock:
    cron: str
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None
    parameter_defaults: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    day_or: bool = True

    def __post_init__(self) -> None:
        from croniter import croniter

        if not isinstance(self.cron, str) or not croniter.is_valid(self.cron):
            raise ConfigurationError(f"CronClock: {self.cron!r} is not a valid cron expression (five fields: "
                                     "minute hour day-of-month month day-of-week, e.g. '0 9 * * 1-5')")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError for odd names
                raise ConfigurationError(f"CronClock: unknown time zone {self.timezone!r} (an IANA name such as "
                                         "'Europe/Paris')") from None

    def _zone(self) -> dt.tzinfo:
        if self.timezone:
            return ZoneInfo(self.timezone)
        if self.start_date is not None and self.start_date.tzinfo is not None:
            return self.start_date.tzinfo
        return UTC

    def times(self, after: dt.datetime) -> Iterator[dt.datetime]:
        from croniter import croniter

        zone = self._zone()
        start = _aware(self.start_date, self.timezone).astimezone(zone)
        base = max(after.astimezone(zone), start - dt.timedelta(seconds=1))
        it = croniter(self.cron, base, day_or=self.day_or)
        while True:
            at = it.get_next(dt.datetime)
            if self.end_date is not None and at > _aware(self.end_date, self.timezone):
                return
            yield at

    def to_dict(self) -> dict[str, Any]:
        return {"type": "CronClock", "cron": self.cron, "start_date": _iso(self.start_date),
                "end_date": _iso(self.end_date), "parameter_defaults": self.parameter_defaults,
                "timezone": self.timezone, "day_or": self.day_or}


Clock = IntervalClock | CronClock


@dataclass
class Schedule:
    """Clocks, and what agents do about missed slots: ``catch_up`` creates every missed slot after downtime
    (up to ``max_catch_up``); otherwise slots later than ``max_lateness`` are skipped."""

    clocks: list[Clock]
    # Prefect 1's next arguments, in its order, so its calls keep working; gitflows has no filters
    filters: list[Any] | None = None
    or_filters: list[Any] | None = None
    not_filters: list[Any] | None = None
    adjustments: list[Any] | None = None
    catch_up: bool = False
    max_lateness: dt.timedelta = dt.timedelta(minutes=1)
    max_catch_up: int = 100

    def __post_init__(self) -> None:
        if not self.clocks or not all(isinstance(c, (IntervalClock, CronClock)) for c in self.clocks):
            raise ConfigurationError("Schedule needs clocks: IntervalClock(...) or CronClock(...)")
        given = [n for n in ("filters", "or_filters", "not_filters", "adjustments") if getattr(self, n)]
        if given:
            raise ConfigurationError(f"Schedule: {', '.join(given)} are not supported by gitflows; express the "
                                     "times with clocks (a CronClock's expression can skip days and hours)")

    def slots(self, after: dt.datetime, until: dt.datetime, limit: int = 1000) -> list[Slot]:
        """Every slot in (*after*, *until*], in time order, at most *limit*."""
        found: list[Slot] = []
        for i, clock in enumerate(self.clocks):
            for at in clock.times(after):
                if at > until or len(found) >= limit * len(self.clocks):
                    break
                found.append(Slot(at, i, dict(clock.parameter_defaults)))
        found.sort(key=lambda s: (s.at, s.clock))
        return found[:limit]

    def next(self, n: int = 1, after: dt.datetime | None = None) -> list[Slot]:
        """The next *n* slots after *after* (now)."""
        start = after or dt.datetime.now(UTC)
        merged: list[Slot] = []
        for i, clock in enumerate(self.clocks):
            for at, _ in zip(clock.times(start), range(n), strict=False):
                merged.append(Slot(at, i, dict(clock.parameter_defaults)))
        merged.sort(key=lambda s: (s.at, s.clock))
        return merged[:n]

    def due(self, now: dt.datetime, since: dt.datetime) -> list[Slot]:
        """The slots an agent should create a run for at *now*, the schedule being in force since *since*."""
        if self.catch_up:
            return self.slots(since, now, limit=self.max_catch_up)
        return self.slots(max(since, now - self.max_lateness), now, limit=self.max_catch_up)

    def to_dict(self) -> dict[str, Any]:
        return {"clocks": [c.to_dict() for c in self.clocks], "catch_up": self.catch_up,
                "max_lateness": self.max_lateness.total_seconds(), "max_catch_up": self.max_catch_up}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        clocks: list[Clock] = []
        for c in data.get("clocks", []):
            start, end = _parse(c.get("start_date")), _parse(c.get("end_date"))
            defaults = dict(c.get("parameter_defaults") or {})
            if c.get("type") == "IntervalClock":
                clocks.append(IntervalClock(dt.timedelta(seconds=float(c["interval"])), start, end, defaults))
            elif c.get("type") == "CronClock":
                clocks.append(CronClock(str(c["cron"]), start, end, defaults, timezone=c.get("timezone"),
                                        day_or=bool(c.get("day_or", True))))
            else:
                raise ConfigurationError(f"recorded schedule has an unknown clock {c.get('type')!r}")
        return cls(clocks, catch_up=bool(data.get("catch_up")),
                   max_lateness=dt.timedelta(seconds=float(data.get("max_lateness", 60))),
                   max_catch_up=int(data.get("max_catch_up", 100)))


def next_times(recorded: dict[str, Any] | None, n: int) -> list[str]:
    """The next *n* due times of a schedule as the registry records it (``Schedule.to_dict()``), ISO 8601 in
    the schedule's time zone; none for no schedule, or one recorded in a form this gitflows cannot read."""
    if not recorded:
        return []
    try:
        return [s.at.isoformat(timespec="seconds") for s in Schedule.from_dict(recorded).next(n)]
    except (GitflowsError, KeyError, TypeError, ValueError):
        return []


def IntervalSchedule(start_date: dt.datetime | dt.timedelta | None = None,  # noqa: N802 - Prefect's name
                     interval: dt.timedelta | None = None, end_date: dt.datetime | None = None) -> Schedule:
    """Prefect 1's ``IntervalSchedule(start_date=None, interval=None, end_date=None)``: one interval clock.
    ``IntervalSchedule(timedelta(hours=1))`` (the interval first) is understood too."""
    if isinstance(start_date, dt.timedelta):
        start_date, interval = None, start_date if interval is None else interval
    if interval is None:
        raise ConfigurationError("IntervalSchedule needs interval=timedelta(...)")
    return Schedule([IntervalClock(interval, start_date, end_date)])


def CronSchedule(cron: str, start_date: dt.datetime | None = None,  # noqa: N802 - Prefect's name
                 end_date: dt.datetime | None = None, day_or: bool = True) -> Schedule:
    """Prefect 1's ``CronSchedule(cron, start_date)``: one cron clock."""
    return Schedule([CronClock(cron, start_date, end_date, day_or=day_or)])


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None
