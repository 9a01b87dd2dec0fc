"""What the web page shows, as plain data (the JSON API returns exactly this; the HTML pages render it).

Nothing here renders HTML or knows about HTTP: each function takes a registry and returns dicts and
lists, so the API and the pages cannot drift apart and both are tested the same way.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlsplit

from gitflows.errors import GitflowsError
from gitflows.redact import redact
from gitflows.registry import FlowVersion, Registry, Run
from gitflows.review import edge_key
from gitflows.schedules import next_times

PAGE = 50
ALIVE_FOR = 30.0  # an agent not seen for this long is shown as gone (agents report every 5 s)
RUN_STATES = ("scheduled", "claimed", "running", "success", "failed", "lost", "cancelled")


def commit_link(storage: dict[str, Any], sha: str | None) -> str | None:
    """The web page of commit *sha* on the storage's host (GitHub, GitLab, Bitbucket, CodeCommit; Git storages
    on those hosts), or None when the host has no known page."""
    if not sha:
        return None
    kind, repo = storage.get("type"), str(storage.get("repo") or "")
    if kind == "GitHub":
        api = str(storage.get("base_url") or "https://api.github.com")
        web = "https://github.com" if "api.github.com" in api else api.rstrip("/").removesuffix("/api/v3")
        return f"{web}/{repo}/commit/{sha}"
    if kind == "GitLab":
        return f"{str(storage.get('host') or 'https://gitlab.com').rstrip('/')}/{repo}/-/commit/{sha}"
    if kind == "Bitbucket":
        if storage.get("workspace"):
            return f"https://bitbucket.org/{storage['workspace']}/{repo}/commits/{sha}"
        host = str(storage.get("host") or "").rstrip("/")
        return f"{host}/projects/{storage.get('project')}/repos/{repo}/commits/{sha}" if host else None
    if kind == "CodeCommit":
        region = (storage.get("client_options") or {}).get("region_name") or "us-east-1"
        return (f"https://{region}.console.aws.amazon.com/codesuite/codecommit/repositories/{quote(repo)}/commit/"
                f"{sha}?region={region}")
    if kind == "Git":
        host = urlsplit(str(storage.get("repo_host") or "")).netloc or str(storage.get("repo_host") or "")
        pages = {"github.com": "commit", "gitlab.com": "-/commit", "bitbucket.org": "commits"}
        return f"https://{host}/{repo}/{pages[host]}/{sha}" if host in pages else None
    return None


def _when(stamp: float | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else None


def run_summary(run: Run) -> dict[str, Any]:
    took = (run.finished_at - run.started_at) if run.finished_at and run.started_at else None
    return {"id": run.id, "flow": run.flow_name, "version": run.version, "state": run.state, "agent": run.agent,
            "attempts": run.attempts, "max_attempts": run.max_attempts, "parameters": run.parameters,
            "created": _when(run.created_at), "due": _when(run.due_at), "started": _when(run.started_at),
            "finished": _when(run.finished_at), "seconds": round(took, 3) if took is not None else None,
            "error": redact(run.error) if run.error else None, "slot": run.slot}


def flows(reg: Registry, label: str | None = None, state: str | None = None, page: int = 1) -> dict[str, Any]:
    """The flows' latest versions with their last runs, a page of :data:`PAGE` at a time; *label* and *state*
    (the last run's, or ``never run``) filter."""
    last = reg.last_runs()
    paused = reg.paused()
    latest = reg.flows()
    chosen = []
    for v in latest:
        run = last.get(v.name)
        if label and label not in v.labels:
            continue
        if state and (run.state if run else "never run") != state:
            continue
        chosen.append((v, run))
    page = max(1, page)
    rows = []
    for v, run in chosen[(page - 1) * PAGE:page * PAGE]:
        rows.append({"name": v.name, "labels": v.labels, "version": v.version, "state": v.state,
                     "sha": v.sha, "short_sha": v.sha[:10] if v.sha else None, "commit_url": commit_link(v.storage, v.sha),
                     "storage": v.storage.get("type"), "scheduled": bool(v.schedule), "paused": v.name in paused,
                     "next_runs": [] if v.name in paused else next_times(v.schedule, 3),
                     "registered": _when(v.registered_at),
                     "last_run": run_summary(run) if run else None, "unreadable": v.unreadable})
    return {"flows": rows, "page": page, "pages": max(1, -(-len(chosen) // PAGE)), "total": len(chosen),
            "label": label, "state": state, "all_labels": sorted({lb for v in latest for lb in v.labels})}


def flow(reg: Registry, name: str) -> dict[str, Any]:
    latest = reg.get_version(name)
    versions = [{"version": v.version, "state": v.state, "sha": v.sha, "short_sha": v.sha[:10] if v.sha else None,
                 "commit_url": commit_link(v.storage, v.sha), "registered": _when(v.registered_at),
                 "fingerprint": v.fingerprint[:12]} for v in reversed(reg.versions(name))]
    return {"name": name, "labels": latest.labels, "latest": latest.version, "versions": versions,
            "paused": name in reg.paused(), "next_runs": next_times(latest.schedule, 5),
            "parameters": parameters(latest.structure),
            "runs": [run_summary(r) for r in reg.runs(name, limit=20)]}


def parameters(structure: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The flow's parameters with defaults (None: the version recorded no structure)."""
    if not structure:
        return None
    return [{"name": p.get("name"), "default": p.get("default"), "required": bool(p.get("required"))}
            for p in structure.get("parameters", []) if isinstance(p, dict)]


def _storage_settings(storage: dict[str, Any]) -> dict[str, Any]:
    """The storage's settings for display: names of secrets, never values; every text redacted anyway."""
    hidden = {"closures", "digests"}
    return {k: redact(v) if isinstance(v, str) else v for k, v in sorted(storage.items()) if k not in hidden}


def version(reg: Registry, name: str, number: int) -> dict[str, Any]:
    v = reg.get_version(name, number)
    previous = None
    if number > 1:
        try:
            previous = reg.get_version(name, number - 1)
        except GitflowsError:
            previous = None
    return {"name": name, "version": v.version, "state": v.state, "labels": v.labels, "sha": v.sha,
            "commit_url": commit_link(v.storage, v.sha), "registered": _when(v.registered_at),
            "fingerprint": v.fingerprint, "storage": _storage_settings(v.storage),
            "closure": [{"path": p, "blob": b} for p, b in v.closure], "parameters": parameters(v.structure),
            "structure": v.structure, "schedule": v.schedule,
            "changes": changes(previous, v) if previous else None}


def changes(before: FlowVersion, after: FlowVersion) -> dict[str, Any]:
    """What changed from version *before* to *after*: the flow (tasks, edges, parameters; when both recorded
    their structure) and the storage's settings, in the words `gitflows diff` uses."""
    flow_lines = structure_diff(before.structure, after.structure)
    skip = {"closures", "digests", "sha"}
    old, new = _storage_settings(before.storage), _storage_settings(after.storage)
    storage_lines = [f"~ storage {k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
                     if k not in skip and old.get(k) != new.get(k)]
    lines = (flow_lines["lines"] if flow_lines else []) + storage_lines
    if before.sha != after.sha and before.sha and after.sha:
        lines.append(f"~ commit {before.sha[:10]} -> {after.sha[:10]}")
    return {"lines": lines, "same": not lines, "flow_known": flow_lines is not None}


def structure_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any] | None:
    """What changed from one version's recorded flow to the next, in the words `gitflows diff` uses (None when
    either version recorded no structure)."""
    if not before or not after:
        return None

    def tasks(s: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {t["name"]: t for t in s.get("tasks", []) if t.get("kind") == "task"}

    def edges(s: dict[str, Any]) -> set[tuple[str, str, str]]:
        return {(e["upstream"], e["downstream"], edge_key(e)) for e in s.get("edges", [])}

    def params(s: dict[str, Any]) -> dict[str, Any]:
        return {p["name"]: p.get("default") for p in s.get("parameters", [])}

    tb, ta = tasks(before), tasks(after)
    changed = sorted(n for n in set(tb) & set(ta) if (tb[n].get("source"), tb[n].get("max_retries"), tb[n].get("mapped"))
                     != (ta[n].get("source"), ta[n].get("max_retries"), ta[n].get("mapped")))
    pb, pa = params(before), params(after)
    lines = ([f"+ task {n}" for n in sorted(set(ta) - set(tb))] + [f"- task {n}" for n in sorted(set(tb) - set(ta))]
             + [f"~ task {n}" for n in changed]
             + [f"+ edge {u} -> {d}" + (f" ({k})" if k else "") for u, d, k in sorted(edges(after) - edges(before))]
             + [f"- edge {u} -> {d}" + (f" ({k})" if k else "") for u, d, k in sorted(edges(before) - edges(after))]
             + [f"+ parameter {n} (default {pa[n]!r})" for n in sorted(set(pa) - set(pb))]
             + [f"- parameter {n}" for n in sorted(set(pb) - set(pa))]
             + [f"~ parameter {n}: default {pb[n]!r} -> {pa[n]!r}" for n in sorted(set(pa) & set(pb)) if pa[n] != pb[n]])
    return {"lines": lines}


def runs(reg: Registry, page: int = 1, flow_name: str | None = None, state: str | None = None) -> dict[str, Any]:
    page = max(1, page)
    total = reg.count_runs(flow_name, state)
    found = reg.runs(flow_name, limit=PAGE, offset=(page - 1) * PAGE, state=state)
    return {"runs": [run_summary(r) for r in found], "page": page, "pages": max(1, -(-total // PAGE)),
            "total": total, "flow": flow_name, "state": state}


def run(reg: Registry, run_id: int) -> dict[str, Any]:
    r = reg.get_run(run_id)
    detail = run_summary(r)
    detail["logs"] = redact(r.logs or "")
    detail["tasks"] = r.tasks or {}
    detail["finished_state"] = r.state in ("success", "failed", "lost", "cancelled")
    try:
        detail["structure"] = reg.get_version(r.flow_name, r.version).structure
    except GitflowsError:
        detail["structure"] = None
    detail["waiting"] = reg.waiting_for(r)
    return detail


def agents(reg: Registry) -> list[dict[str, Any]]:
    now = time.time()
    busy: dict[str, list[int]] = {}
    for state in ("claimed", "running"):
        for r in reg.runs(state=state, limit=1000):
            if r.agent:
                busy.setdefault(r.agent, []).append(r.id)
    return [{"name": a.name, "labels": a.labels, "alive": now - a.last_seen <= ALIVE_FOR,
             "last_seen": _when(a.last_seen), "seconds_ago": round(now - a.last_seen, 1), "started": _when(a.started_at),
             "runs": sorted(busy.get(a.name, []))} for a in reg.agents()]
