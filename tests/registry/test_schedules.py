"""Schedules (issue 15): clocks and their slots, recorded with registration, and agents creating due runs
exactly once per slot however many run at once, on SQLite and PostgreSQL; catch-up on and off; pause."""

from __future__ import annotations

import datetime as dt
import textwrap
import threading
import time

import pytest

from gitflows import Flow, task
from gitflows.agent import Agent
from gitflows.errors import ConfigurationError
from gitflows.registry import FlowVersion, open_registry
from gitflows.schedules import CronClock, CronSchedule, IntervalClock, IntervalSchedule, Schedule
from gitflows.storage import Local

from ..conftest import run_cli

UTC = dt.timezone.utc

QUICK = textwrap.dedent('''
    from gitflows import Flow, task

    @task
    def tick():
        return 1

    with Flow("ticker") as flow:
        tick()
''')


def test_an_interval_clock_is_a_fixed_grid():
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    clock = IntervalClock(dt.timedelta(minutes=15), start_date=start)
    after = dt.datetime(2026, 12, 1, 9, 7, 30, tzinfo=UTC)
    times = [t for t, _ in zip(clock.times(after), range(3), strict=False)]
    assert [t.strftime("%H:%M") for t in times] == ["09:15", "09:30", "09:45"]


def test_a_cron_clock_keeps_local_time_across_daylight_saving():
    clock = CronClock("0 9 * * *", timezone="Europe/Paris")
    after = dt.datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # Paris moves to summer time on 29 March
    days = [t for t, _ in zip(clock.times(after), range(3), strict=False)]
    assert [t.strftime("%d %H:%M") for t in days] == ["28 09:00", "29 09:00", "30 09:00"]
    assert [t.astimezone(UTC).hour for t in days] == [8, 7, 7]


def test_clocks_carry_parameters_and_a_schedule_round_trips():
    schedule = Schedule([IntervalClock(dt.timedelta(hours=1), parameter_defaults={"region": "eu"}),
                         CronClock("30 * * * *", parameter_defaults={"region": "us"})], catch_up=True)
    again = Schedule.from_dict(schedule.to_dict())
    assert again.to_dict() == schedule.to_dict()
    slots = again.next(2, after=dt.datetime(2026, 12, 1, 10, 5, tzinfo=UTC))
    assert [(s.at.strftime("%H:%M"), s.parameters["region"]) for s in slots] == [("10:30", "us"), ("11:00", "eu")]
    assert IntervalSchedule(dt.timedelta(minutes=5)).clocks[0].interval == dt.timedelta(minutes=5)
    assert CronSchedule("0 0 * * *").clocks[0].cron == "0 0 * * *"


def test_bad_clocks_are_one_line():
    with pytest.raises(ConfigurationError, match="not a valid cron expression"):
        CronClock("every monday")
    with pytest.raises(ConfigurationError, match="unknown time zone 'Mars/Olympus'"):
        CronClock("0 9 * * *", timezone="Mars/Olympus")
    with pytest.raises(ConfigurationError, match="positive timedelta"):
        IntervalClock(dt.timedelta(0))


def test_missed_slots_are_skipped_unless_catching_up():
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    since = now - dt.timedelta(hours=1)
    hourly = [IntervalClock(dt.timedelta(minutes=1), start_date=dt.datetime(2026, 1, 1, tzinfo=UTC))]
    assert len(Schedule(hourly).due(now, since)) == 1  # only the slot within max_lateness (1 minute)
    assert len(Schedule(hourly, catch_up=True).due(now, since)) == 60
    assert len(Schedule(hourly, catch_up=True, max_catch_up=10).due(now, since)) == 10


def test_a_flow_schedule_is_part_of_its_structure_only_when_set():
    @task
    def t():
        return 1

    with Flow("plain") as plain:
        t()
    with Flow("plain", schedule=IntervalSchedule(dt.timedelta(minutes=5))) as scheduled:
        t()
    assert "schedule" not in plain.structure()
    assert scheduled.structure()["schedule"]["clocks"][0]["interval"] == 300.0
    assert plain.fingerprint() != scheduled.fingerprint()


def register(url, tmp_path, schedule, registered_at=None, labels=()):
    script = tmp_path / "ticker.py"
    script.write_text(QUICK)
    storage = Local(stored_as_script=True, path=str(script))
    reg = open_registry(url)
    version, _ = reg.register(FlowVersion(
        name="ticker", version=0, storage=storage.serialize(), repo=None, path=str(script), requested_ref=None,
        sha=None, closure=[], fingerprint=f"fp-{time.time()}", labels=list(labels), state="confirmed",
        registered_at=0.0, schedule=schedule.to_dict()))
    if registered_at is not None:
        reg._exec("UPDATE flow_versions SET registered_at = ? WHERE name = ?", (registered_at, "ticker"))
    return reg


def slot_times(reg):
    runs = [r for r in reg.runs("ticker") if r.slot]
    return sorted(dt.datetime.fromisoformat(r.slot.split("@", 1)[1]) for r in runs), runs


def test_several_agents_create_each_slot_exactly_once(registry_url, tmp_path):
    reg = register(registry_url, tmp_path, Schedule([IntervalClock(dt.timedelta(seconds=1))]))
    agents = [Agent(registry_url, poll=0.05, concurrency=2) for _ in range(3)]
    threads = [threading.Thread(target=a.run, daemon=True) for a in agents]
    for th in threads:
        th.start()
    time.sleep(4.5)
    for a in agents:
        a.stopping.set()
    for th in threads:
        th.join(30)
    times, runs = slot_times(reg)
    assert len(times) >= 3, [r.slot for r in runs]
    assert len({r.slot for r in runs}) == len(runs)  # no slot twice
    gaps = {(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)}
    assert gaps == {1.0}, times  # none skipped over the window
    assert all(abs(r.due_at - dt.datetime.fromisoformat(r.slot.split("@", 1)[1]).timestamp()) < 1e-6 for r in runs)


def test_after_downtime_only_catching_up_creates_the_missed_slots(registry_url, tmp_path):
    down_since = time.time() - 10
    grid = dt.datetime(2026, 1, 1, tzinfo=UTC)
    skip = Schedule([IntervalClock(dt.timedelta(seconds=1), start_date=grid)], max_lateness=dt.timedelta(seconds=2))
    reg = register(registry_url, tmp_path, skip, registered_at=down_since)
    Agent(registry_url, poll=0.05)._schedule()
    times, _ = slot_times(reg)
    assert 1 <= len(times) <= 3  # the slots of the last 2 s, not a burst of 10
    reg._exec("DELETE FROM runs")
    catch = Schedule([IntervalClock(dt.timedelta(seconds=1), start_date=grid)], catch_up=True)
    reg = register(registry_url, tmp_path, catch, registered_at=down_since)
    Agent(registry_url, poll=0.05)._schedule()
    times, _ = slot_times(reg)
    assert 9 <= len(times) <= 11


def test_a_paused_flow_gets_no_scheduled_runs(registry_url, tmp_path):
    reg = register(registry_url, tmp_path, Schedule([IntervalClock(dt.timedelta(seconds=1))]),
                   registered_at=time.time() - 1.5)
    paused = run_cli("pause", "ticker", env={"GITFLOWS_REGISTRY": registry_url})
    assert paused.returncode == 0 and "ticker: schedule paused" in paused.stdout
    Agent(registry_url, poll=0.05)._schedule()
    assert slot_times(reg)[0] == []
    listed = run_cli("flows", env={"GITFLOWS_REGISTRY": registry_url})
    assert "ticker" in listed.stdout and "\tpaused" in listed.stdout
    run_cli("resume", "ticker", env={"GITFLOWS_REGISTRY": registry_url})
    Agent(registry_url, poll=0.05)._schedule()
    assert len(slot_times(reg)[0]) >= 1


def test_flows_shows_the_next_runs(registry_url, tmp_path):
    register(registry_url, tmp_path, CronSchedule("0 9 * * *"))
    listed = run_cli("flows", env={"GITFLOWS_REGISTRY": registry_url})
    assert "next run " in listed.stdout and "T09:00:00" in listed.stdout
    data = run_cli("flows", "--json", env={"GITFLOWS_REGISTRY": registry_url})
    import json

    [entry] = json.loads(data.stdout)
    assert len(entry["next_runs"]) == 3 and entry["paused"] is False


def test_registering_a_flow_records_its_schedule(tmp_path, monkeypatch):
    url = str(tmp_path / "reg.db")
    monkeypatch.setenv("GITFLOWS_REGISTRY", url)
    script = tmp_path / "etl.py"
    script.write_text(QUICK)

    @task
    def t():
        return 1

    with Flow("ticker", storage=Local(stored_as_script=True, path=str(script)),
              schedule=IntervalSchedule(dt.timedelta(minutes=10))) as flow:
        t()
    assert flow.register() == "ticker:v1"  # Prefect 1's call
    assert open_registry(url).get_version("ticker").schedule["clocks"][0]["interval"] == 600.0


def test_prefect_1_schedule_calls_work_unchanged():
    start = dt.datetime(2026, 12, 1, tzinfo=UTC)
    prefect = IntervalSchedule(start_date=start, interval=dt.timedelta(minutes=5))
    positional = IntervalSchedule(start, dt.timedelta(minutes=5))
    assert prefect.to_dict() == positional.to_dict()
    assert prefect.next(1, after=start)[0].at == start + dt.timedelta(minutes=5)
    assert CronSchedule("0 9 * * *", start_date=start).clocks[0].start_date == start


def test_prefect_filters_are_refused_in_one_line_not_ignored():
    with pytest.raises(ConfigurationError, match="filters are not supported by gitflows"):
        Schedule([IntervalClock(dt.timedelta(hours=1))], filters=[lambda d: d.weekday() < 5])
    assert Schedule(clocks=[IntervalClock(dt.timedelta(hours=1))], filters=[]).clocks  # empty is fine


def test_a_garbled_recorded_schedule_is_skipped_and_the_agent_goes_on(registry_url, tmp_path):
    reg = register(registry_url, tmp_path, Schedule([IntervalClock(dt.timedelta(seconds=1))]),
                   registered_at=time.time() - 1.5)
    reg._exec("UPDATE flow_versions SET schedule = ? WHERE name = ?",
              ('{"clocks": [{"type": "SundialClock"}]}', "ticker"))
    agent = Agent(registry_url, poll=0.05)
    agent._schedule()  # logged, not raised: runs in hand and other flows go on
    assert slot_times(reg)[0] == []
    reg._exec("UPDATE flow_versions SET schedule = ? WHERE name = ?", ("{not json", "ticker"))
    agent._scheduled_at = 0.0
    agent._schedule()
    assert slot_times(reg)[0] == []
    listed = run_cli("flows", env={"GITFLOWS_REGISTRY": registry_url})
    assert listed.returncode == 0 and "unreadable" in listed.stdout
