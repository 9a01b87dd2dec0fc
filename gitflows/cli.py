"""The ``gitflows`` command line.

Exit codes: 0 success; 1 the command ran and found a problem (``check``
problems, a failed flow run); 2 bad usage or an error the user can act on
(missing file, flow not found, bad configuration, integrity); 3 an unexpected
internal error (run again with ``--debug`` and report it).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from gitflows.errors import GitflowsError
from gitflows.redact import redact
from gitflows.version import __version__

if TYPE_CHECKING:
    from gitflows.registry import Registry

EXIT_OK, EXIT_PROBLEMS, EXIT_USER_ERROR, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("n=5", "name=bob")`` -> ``{"n": 5, "name": "bob"}`` (:mod:`gitflows.params`); a bad one is a
    one-line ``click.BadParameter`` naming it."""
    from gitflows.params import ParameterError, parse_pairs

    try:
        return parse_pairs(pairs)
    except ParameterError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--param {exc.key}" if exc.key else "--param") from None


class _State:
    debug = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(__version__, "--version", prog_name="gitflows")
@click.option("--debug", is_flag=True, help="Show debug logs and full tracebacks.")
@click.option("-v", "--verbose", is_flag=True, help="Show progress logs (INFO).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """gitflows: store flows where your code lives and load exactly the registered version back.

    \b
    Exit codes: 0 ok, 1 problems found / flow failed, 2 usage or user error,
    3 internal error (re-run with --debug).
    """
    _State.debug = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("gitflows").setLevel(level)
    quiet_client_libraries()
    if ctx.invoked_subcommand is None:  # bare `gitflows`: what it can do, and success
        click.echo(ctx.get_help())


#: client libraries whose DEBUG logs print request headers and signed URLs (AWS session tokens, SAS
#: signatures, Authorization headers) that gitflows did not resolve itself and so cannot redact
CLIENT_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "requests", "azure", "google", "github",
                  "gitlab", "atlassian", "dulwich", "docker", "msal")


def quiet_client_libraries() -> None:
    """Keep client libraries at INFO even under --debug (GITFLOWS_DEBUG_CLIENT_LIBRARIES=1 lets them through)."""
    if os.environ.get("GITFLOWS_DEBUG_CLIENT_LIBRARIES") == "1":
        return
    for name in CLIENT_LOGGERS:
        if logging.getLogger(name).getEffectiveLevel() < logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)


@cli.command()
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--staged", is_flag=True, help="Check the Python files staged for commit, as staged (the pre-commit "
                                             "hook), instead of FILES.")
def check(files: tuple[str, ...], staged: bool) -> None:
    """Check flow scripts offline, without running them.

    Reads each FILE's syntax tree: it parses, defines flows with literal,
    unique names, each flow has a storage, a repository storage's path is the
    file's real path in the repo and its repo matches remote 'origin', and the
    sibling modules it imports exist. Prints one line per problem and exits 1
    when there is any.
    """
    from gitflows.check import check_files

    contents = None
    if staged:
        from gitflows.localgit import find_repo_root, staged_python_files

        root = find_repo_root(os.getcwd())
        if root is None:
            raise click.UsageError("--staged: not inside a git repository")
        contents = staged_python_files(root)
        files = tuple(contents)
        if not files:
            click.echo("gitflows check: no Python files staged", err=True)
            return
    if not files:
        raise click.UsageError("give the flow scripts to check (e.g. gitflows check flows/*.py), or --staged")
    folders = [f for f in files if os.path.isdir(f)]
    if folders:
        raise click.UsageError(f"{folders[0]} is a folder; give its Python files (e.g. {folders[0].rstrip('/')}/*.py)")
    problems, count = check_files(list(files), contents)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s) in {len(files)} file(s)", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"checked {len(files)} file(s), {count} flow(s): ok", err=True)


@cli.command()
@click.argument("target")
@click.option("--flow", "flow_name", metavar="NAME", help="Which flow, when FILE defines several.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter value (repeatable). Read as JSON when it parses (n=5 is the number 5), "
                   "else as a string.")
@click.option("--flow-version", "version", type=int, metavar="N",
              help="With a registered NAME: run version N (default: the latest).")
@click.option("--wait", is_flag=True, help="With a registered NAME: wait for the run to finish and show it.")
@click.option("--timeout", type=float, default=600, show_default=True, help="How long --wait waits (seconds).")
def run(target: str, flow_name: str | None, params: tuple[str, ...], version: int | None, wait: bool,
        timeout: float) -> None:
    """Run a flow: TARGET is a registered flow NAME (a run for agents) or a script FILE (run here, now).

    \b
    gitflows run etl --param n=5 [--wait]      schedule a run of the latest registered version
    gitflows run flows/etl.py --param n=5      run the script's flow in this process
    gitflows run ./etl                         run the local file etl (not the registered flow)

    TARGET is a file only when it looks like a path: it contains a path separator, starts with
    '.' or '/', or ends in .py. Anything else is a registered flow name, even when a file of that
    name exists here (say ./NAME to run the file). Which was chosen is said on stderr.
    """
    import os

    parameters = parse_params(params)
    if _looks_like_path(target):
        _run_file(target, flow_name, parameters)
        return
    from gitflows.errors import FlowNotFoundError
    from gitflows.registry import open_registry
    from gitflows.registry.sql import FINISHED

    registry = open_registry(create=False)  # scheduling needs a registered flow: never a fresh database
    try:
        record = registry.get_version(target, version)
    except FlowNotFoundError as exc:
        raise FlowNotFoundError(f"{exc}; to run a local file, give its path (./{target})") from None
    if os.path.exists(target):
        click.echo(f"{target}: the registered flow (a file of that name exists here; to run the file, "
                   f"say ./{target})", err=True)
    created = registry.create_run(target, record.version, parameters)
    click.echo(f"run {created.id}: {target} v{record.version} at {record.sha or '-'} scheduled"
               + (" (version pending: it runs once its commit is on the remote)" if record.state == "pending" else ""))
    if not wait:
        return
    def no_agent_yet(run: Any) -> None:
        click.echo(f"run {run.id}: still scheduled after 5s: it {registry.waiting_for(run)}; start one "
                   f"(gitflows agent{''.join(f' --label {label}' for label in record.labels)}) or stop waiting "
                   "with Ctrl-C (the run stays scheduled)", err=True)

    current = registry.wait_for(created.id, timeout, notice_after=5.0, notice=no_agent_yet)
    if current.state not in FINISHED:
        click.echo(f"run {created.id}: still {current.state} after {timeout:.0f}s", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"run {current.id}: {current.state}" + (f": {current.error}" if current.error else ""))
    if current.logs:
        click.echo(current.logs.rstrip())
    if current.state != "success":
        sys.exit(EXIT_PROBLEMS)


def _looks_like_path(target: str) -> bool:
    """A ``gitflows run`` TARGET names a file only when it looks like a path (./x, /x, a/x, x.py)."""
    import os

    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return any(sep in target for sep in separators) or target.startswith((".", "/")) or target.endswith(".py")


def _run_file(file: str, flow_name: str | None, parameters: dict[str, Any]) -> None:
    from gitflows.context import use_secrets
    from gitflows.redact import redacted_output
    from gitflows.script import extract_flow_from_file

    flow = extract_flow_from_file(file_path=file, flow_name=flow_name)
    click.echo(f"running flow {flow.name!r} from {file}", err=True)
    secrets = list(getattr(flow.storage, "secrets", None) or [])
    with use_secrets(secrets), redacted_output():
        state = flow.run(parameters=parameters)
    assert state is not None  # Flow.run returns None only while a script is being loaded
    for name, task_state in state.result.items():
        detail = task_state.message or _short(task_state.result)
        click.echo(f"  {task_state.state:<8} {name}" + (f"  {detail}" if detail else ""))
    click.echo(f"flow {flow.name!r}: {state.state}")
    if not state.is_successful():
        sys.exit(EXIT_PROBLEMS)


def _short(value: Any, limit: int = 60) -> str:
    if value is None:
        return ""
    text = redact(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def flows(file: str | None, as_json: bool) -> None:
    """List flows: those FILE defines, or without FILE those the registry holds.

    For FILE, runs the script when its imports are installed (exact storage settings); otherwise
    reads its syntax tree and says so. Without FILE: every registered flow's latest version, its
    pinned SHA and state (pending until the commit is on the remote).
    """
    if file is None:
        _registry_flows(as_json)
        return
    from gitflows.script import describe_flows

    mode, rows, note = describe_flows(file)
    if note:
        click.echo(f"note: {note}; showing what the syntax tree says instead", err=True)
    if as_json:
        click.echo(json.dumps({"file": file, "mode": mode, "flows": rows}, indent=2, sort_keys=True))
        return
    if not rows:
        click.echo(f"no flows found in {file}")
    for row in rows:
        storage = row["storage"]
        if storage:
            shown = {k: v for k, v in storage.items()
                     if k not in ("type", "__version__", "flows", "labels", "secrets", "add_default_labels")
                     and v not in (None, False, [], {})}
            desc = f"{storage['type']}(" + ", ".join(f"{k}={v!r}" for k, v in sorted(shown.items())) + ")"
        else:
            desc = "no storage"
        click.echo(f"{row['name']}\t{desc}")


def _registry_flows(as_json: bool) -> None:
    from gitflows.registry import open_registry
    from gitflows.registry.sql import NoRegistryError
    from gitflows.schedules import next_times

    registry = open_registry(create=False)
    try:
        versions = registry.flows()
    except NoRegistryError as exc:  # nothing registered yet: an empty listing, and no database created
        click.echo("[]" if as_json else f"no flows registered ({exc})")
        return
    paused = registry.paused()
    if as_json:
        click.echo(json.dumps([{"name": v.name, "version": v.version, "sha": v.sha, "path": v.path, "state": v.state,
                                "labels": v.labels, "fingerprint": v.fingerprint, "unreadable": v.unreadable,
                                "paused": v.name in paused, "next_runs": next_times(v.schedule, 3)}
                               for v in versions], indent=2))
        return
    if not versions:
        click.echo(f"no flows registered in {registry.dialect.describe()}")
    for v in versions:
        upcoming = next_times(v.schedule, 1)
        when = ("\tpaused" if v.name in paused else f"\tnext run {upcoming[0]}") if upcoming else ""
        click.echo(f"{v.name}\tv{v.version}\t{(v.sha or '-')[:12]}\t{v.state}\t{v.path or '-'}{when}"
                   + (f"\tunreadable: {v.unreadable}" if v.unreadable else ""))


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", type=int, default=50, show_default=True)
def runs(name: str | None, as_json: bool, limit: int) -> None:
    """List flow runs in the registry (of flow NAME, or all), newest first."""
    from gitflows.registry import open_registry
    from gitflows.registry.sql import NoRegistryError

    registry = open_registry(create=False)
    try:
        items = registry.runs(name, limit)
    except NoRegistryError as exc:
        click.echo("[]" if as_json else f"no runs ({exc})")
        return
    if as_json:
        click.echo(json.dumps([{**{k: getattr(r, k) for k in ("id", "flow_name", "version", "state", "attempts",
                                                              "agent", "error", "parameters", "unreadable")},
                                "waiting": registry.waiting_for(r)} for r in items], indent=2))
        return
    if not items and not as_json:
        known = [v.name for v in registry.flows()]
        if name and name not in known:
            click.echo(f"no runs: flow {name!r} is not registered in {registry.dialect.describe()} (registered: "
                       f"{', '.join(known) or 'none'})")
        else:
            click.echo(f"no runs{f' of {name!r}' if name else ''} yet (gitflows run NAME schedules one)")
    for r in items:
        waiting = registry.waiting_for(r)
        click.echo(f"{r.id}\t{r.flow_name}\tv{r.version}\t{r.state}\tattempts={r.attempts}\t{r.agent or '-'}"
                   + (f"\t{waiting}" if waiting else "")
                   + (f"\tunreadable: {r.unreadable}" if r.unreadable else "") + (f"\t{r.error}" if r.error else ""))


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--hook", is_flag=True, help="Pre-push mode: the range comes from PRE_COMMIT_FROM_REF/"
                                           "PRE_COMMIT_TO_REF (pre-commit) or stdin (a plain git pre-push hook).")
@click.option("--from", "from_ref", metavar="REF", help="Register flows changed since REF ...")
@click.option("--to", "to_ref", metavar="REF", default="HEAD", show_default=True, help="... up to REF (pinned there).")
@click.option("--remote", default=None, help="Remote name (hook argument); informational.")
@click.option("--remote-url", default=None, help="Remote URL (hook argument); informational.")
@click.option("--confirm-pending", "confirm_only", is_flag=True,
              help="Register nothing; confirm the pending versions whose commit is now on the remote (CI after a "
                   "merge).")
@click.option("--pushed", "confirmed", is_flag=True,
              help="The commit is already on the remote (CI after the push): register as confirmed, not pending.")
def register(paths: tuple[str, ...], hook: bool, from_ref: str | None, to_ref: str, remote: str | None,
             remote_url: str | None, confirm_only: bool, confirmed: bool) -> None:
    """Register flows, pinned to a commit, in the registry (GITFLOWS_REGISTRY).

    \b
    gitflows register flows/etl.py          the flows in these scripts, at HEAD
    gitflows register --from origin/main    flows changed since origin/main (script or imported modules)
    gitflows register --hook                in a pre-push hook: the pushed range, as pending
    gitflows register --confirm-pending     confirm pending versions now visible on the remote
    gitflows register flows/etl.py --pushed in CI after the push: confirmed right away

    An unchanged flow (same fingerprint and files) gets no new version. A pending version is never run
    by an agent; it is confirmed when its commit is visible on the remote.
    """
    from gitflows.localgit import find_repo_root
    from gitflows.registry import open_registry

    registry = open_registry()
    if not confirm_only:
        root = find_repo_root(os.getcwd())
        if root is None:
            raise click.UsageError("not inside a git repository")
        ranges = _pushed_ranges() if hook else [(from_ref, to_ref)]
        if hook:
            _reachable_for_push(registry, ranges)
        _register_ranges(registry, root, ranges, paths, "confirmed" if confirmed else "pending")
    _confirm_visible(registry, hook)


def _reachable_for_push(registry: Registry, ranges: list[tuple[str | None, str]]) -> None:
    """In the pre-push hook, a registry that cannot be reached stops the push with the way around it."""
    try:
        registry.conn()
    except GitflowsError as exc:
        since = next((old for old, _ in ranges if old and old.strip("0")), None)
        later = f"gitflows register --from {since[:12]}" if since else "gitflows register --from <the remote's commit>"
        raise GitflowsError(f"{exc}. The push was stopped so that no flow goes unregistered; to push anyway, "
                            f"run git push --no-verify, then register once the registry is back: {later}") from None


def _pushed_ranges() -> list[tuple[str | None, str]]:
    """The (old, new) ref ranges a push sends, for ``register --hook``: pre-commit's PRE_COMMIT_FROM_REF/
    PRE_COMMIT_TO_REF, else a plain git pre-push hook's stdin; else the pushed branch from the start."""
    from gitflows.register import ZERO

    ranges: list[tuple[str | None, str]] = []
    env_from, env_to = os.environ.get("PRE_COMMIT_FROM_REF"), os.environ.get("PRE_COMMIT_TO_REF")
    if env_to:
        ranges.append((env_from, env_to))
    elif not sys.stdin.isatty():
        for line in sys.stdin.read().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[1] != ZERO:  # a deleted ref pushes nothing
                ranges.append((parts[3], parts[1]))
    if not ranges:
        # pre-commit pushing a branch with no commit on the remote yet sets no FROM/TO refs
        # ("all files"): register everything at the pushed branch
        ranges.append((None, os.environ.get("PRE_COMMIT_LOCAL_BRANCH") or "HEAD"))
    return ranges


def _register_ranges(registry: Registry, root: str, ranges: list[tuple[str | None, str]], paths: tuple[str, ...],
                     state: str) -> None:
    """Print what registering each (old, new) range (or the scripts in *paths*) did."""
    from gitflows.register import register_range

    for old, new in ranges:
        show = _progress()
        base, sha, outcomes = register_range(registry, root, old, new, paths or None, state, show)
        if show is not None:
            click.echo("\r" + " " * 101 + "\r", err=True, nl=False)  # the progress line goes away
        for o in outcomes:
            click.echo(f"{o.path}: {o.name}: {o.message}")
        if not outcomes:
            click.echo(f"no flow changed in {(base or 'the start')[:12]}..{sha[:12]}", err=True)


def _progress() -> Any:
    """A progress line on a terminal (rewritten in place, cleared at the end); nothing when stderr is not one
    (hooks in CI, pipes): logs stay clean."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, what: str) -> None:
        line = f"  [{done + 1}/{total}] {what}"
        click.echo(f"\r{line[:100]:<100}", err=True, nl=False)

    return show


def _confirm_visible(registry: Registry, hook: bool) -> None:
    """Confirm the pending versions whose commit is now on the remote. In a hook, failing to check is
    a note: a push must not fail because of it."""
    from gitflows.register import confirm_pending

    try:
        results = confirm_pending(registry)
    except Exception as exc:  # a push must not fail because confirmation could not be checked
        if not hook:
            raise
        click.echo(f"note: could not check pending versions now ({type(exc).__name__}: {redact(str(exc))}); "
                   "they stay pending", err=True)
        results = []
    for version, status in results:
        short = (version.sha or "-")[:12]
        if status.visible:
            click.echo(f"{version.name}: version {version.version} confirmed (commit {short} is on the remote)")
        elif status.final:
            click.echo(f"{version.name}: version {version.version} cannot be confirmed: {status.reason}; fix the "
                       "flow's storage and register it again", err=True)
        else:
            click.echo(f"{version.name}: version {version.version} stays pending: {status.reason}", err=True)
    if not hook and any(not s.visible and s.final for _, s in results):
        sys.exit(EXIT_PROBLEMS)


@cli.command()
@click.option("--label", "labels", multiple=True, help="Labels this agent serves (repeatable); a flow runs on an "
                                                     "agent that has all of the flow's labels.")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Runs in parallel.")
@click.option("--once", is_flag=True, help="Run every run that is due now, then exit.")
@click.option("--lease", type=float, default=30, show_default=True,
              help="Seconds without a heartbeat after which a run is taken back from its agent.")
@click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds a run may take.")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between looks for due runs.")
@click.option("--warm", is_flag=True, help="Fork each run's process from a warm worker that imported gitflows once "
                                           "(a trivial run starts in ~20 ms instead of ~100 ms); still one process "
                                           "per run, with its own modules.")
@click.option("--container-memory", metavar="SIZE", help="Memory limit of each run's container (Docker-stored "
              "flows), e.g. 512m or 2g; no swapping past it. A run killed for passing it is recorded as out of "
              "memory.")
@click.option("--container-cpus", type=float, metavar="N", help="CPUs each run's container may use, e.g. 1.5.")
@click.option("--container-pids", type=int, metavar="N", help="Most processes each run's container may start.")
@click.option("--executor", metavar="SPEC", help="Where flows without an executor of their own run their tasks: "
              "local (the default), local-dask[:threads|processes[:N]], or a Dask scheduler address such as "
              "tcp://10.0.0.5:8786 (docs/executors.md).")
def agent(labels: tuple[str, ...], concurrency: int, once: bool, lease: float, timeout: float, poll: float,
          warm: bool, container_memory: str | None, container_cpus: float | None, container_pids: int | None,
          executor: str | None) -> None:
    """Claim due runs from the registry and run each flow at its pinned commit, in a child process.

    Each flow is loaded through its storage (cache first), every file checked against the registered
    blob ids. SIGTERM stops claiming and lets the runs in hand finish.
    """
    from gitflows.agent import Agent

    limits = None
    if container_memory is not None or container_cpus is not None or container_pids is not None:
        from gitflows.docker.runner import Limits

        limits = Limits(memory=container_memory, cpus=container_cpus, pids=container_pids)
        limits.host_config()  # a bad value stops the agent here, naming it
    if executor is not None:
        from gitflows.executors import from_spec

        from_spec(executor)  # a bad spec stops the agent here, naming it
    done = Agent(labels=list(labels), concurrency=concurrency, lease=lease, timeout=timeout, poll=poll,
                 echo=True, warm=warm, container_limits=limits, executor=executor).run(once=once)
    failed = [r for r, state in done if state != "success"]
    if once and failed:
        sys.exit(EXIT_PROBLEMS)


@cli.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but 127.0.0.1 makes the page reachable from other machines.")
@click.option("--port", type=int, default=8700, show_default=True, help="Port to listen on.")
@click.option("--token-secret", envvar="GITFLOWS_UI_TOKEN", metavar="NAME",
              help="Name of the secret holding the token that allows starting and cancelling runs (environment, "
                   "keyring or secrets file, like every gitflows secret); default GITFLOWS_UI_TOKEN. Without it "
                   "the page is read-only.")
def ui_command(host: str, port: int, token_secret: str | None) -> None:
    """Serve a web page over the registry: flows, versions (graph, files, changes), runs and their logs, agents.

    JSON of the same under /api (docs/ui.md). Read-only unless --token-secret names a secret.
    """
    try:
        import uvicorn

        from gitflows.ui import create_app
    except ImportError:
        raise GitflowsError("gitflows ui needs the ui extra: pip install -e '.[ui]' in the gitflows checkout") from None
    from gitflows.registry import open_registry
    from gitflows.registry.sql import NoRegistryError
    from gitflows.secrets import resolve_secret

    token = resolve_secret(token_secret) if token_secret else None
    registry = open_registry(create=False)
    try:
        registry.conn()  # an unreachable registry (or one of a newer schema) is said now, not on the first page
    except NoRegistryError as exc:
        click.echo(f"gitflows ui: note: {exc}; the pages say so until something is registered", err=True)
    finally:
        registry.close()
    click.echo(f"gitflows ui: http://{host}:{port}/ ({'actions need the token' if token else 'read-only'}); "
               "Ctrl-C stops it", err=True)
    uvicorn.run(create_app(None, token), host=host, port=port, log_level="warning")


@cli.command("diff")
@click.argument("base")
@click.argument("head", default="HEAD")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
              help="text for a terminal (colour on a TTY), json (stable schema, docs/review.md), markdown for a "
                   "pull-request comment.")
@click.option("--static", is_flag=True, help="Compare syntax trees only, even when the flows' imports are installed.")
def diff_command(base: str, head: str, fmt: str, static: bool) -> None:
    """Show what the change BASE..HEAD does to each flow (HEAD defaults to HEAD).

    Reads both sides from the git object database (no checkout). A flow is compared when its script or
    a module it imports changed: flows added, removed, renamed, moved; tasks added, removed, changed;
    edges; parameters and defaults; storage settings; fingerprint. Exit code 0 when no flow changed,
    1 when some did, 2 on error.
    """
    import os

    from gitflows import review
    from gitflows.localgit import find_repo_root

    root = find_repo_root(os.getcwd())
    if root is None:
        raise click.UsageError("not inside a git repository")
    report = review.diff(root, base, head, force_static=static)
    if fmt == "json":
        click.echo(json.dumps(report, indent=2, sort_keys=True, default=list))
    elif fmt == "markdown":
        click.echo(review.format_markdown(report), nl=False)
    else:
        click.echo(review.format_text(report, color=sys.stdout.isatty()))
    sys.exit(EXIT_PROBLEMS if report["changed"] else EXIT_OK)


@cli.command()
@click.argument("name")
def pause(name: str) -> None:
    """Pause flow NAME's schedule: agents create no scheduled runs for it until it is resumed (runs already
    scheduled, and runs asked for with gitflows run, still run)."""
    from gitflows.registry import open_registry

    open_registry(create=False).pause(name, True)
    click.echo(f"{name}: schedule paused")


@cli.command()
@click.argument("name")
def resume(name: str) -> None:
    """Resume flow NAME's schedule. Slots missed while paused are not run unless its schedule catches up."""
    from gitflows.registry import open_registry

    open_registry(create=False).pause(name, False)
    click.echo(f"{name}: schedule resumed")


@cli.command()
def doctor() -> None:
    """Check this machine and repository: install, extras the flows here need, git, the registry, the
    secrets the flows name, the hooks (and the Python they run with), the Docker daemon.

    One line per check; exits 1 when something needs fixing, with the fix on its line. Nothing from the
    repository is executed and no registry is created."""
    from gitflows.doctor import run as run_doctor

    findings = run_doctor(os.getcwd())
    for finding in findings:
        click.echo(str(finding))
    problems = sum(1 for f in findings if f.level == "problem")
    if problems:
        click.echo(f"{problems} problem(s) to fix", err=True)
        sys.exit(EXIT_PROBLEMS)


@cli.group()
def hooks() -> None:
    """Git hooks for users without the pre-commit framework."""


@hooks.command("install")
@click.option("--force", is_flag=True, help="Replace existing hooks.")
def hooks_install(force: bool) -> None:
    """Install the pre-commit (gitflows check) and pre-push (gitflows register) hooks in this repository."""
    from gitflows.localgit import find_repo_root, install_hooks

    root = find_repo_root(os.getcwd())
    if root is None:
        raise click.UsageError("not inside a git repository")
    try:
        installed = install_hooks(root, force)
    except FileExistsError as exc:
        raise click.UsageError(f"{exc.filename} exists; use --force to replace it") from None
    for target in installed:
        click.echo(f"installed {target}")


@cli.group()
def cache() -> None:
    """Inspect or prune the local cache of fetched flow files."""


@cache.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_info(as_json: bool) -> None:
    """Show where the cache is and how much it holds."""
    from gitflows.cache import Cache

    info = Cache().info()
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    click.echo(f"cache: {info['root']}")
    click.echo(f"  trees: {info['trees']['count']} ({info['trees']['files']} files, {info['trees']['bytes']} bytes)")
    click.echo(f"  blobs: {info['blobs']['files']} ({info['blobs']['bytes']} bytes)")
    click.echo(f"  docs:  {info['docs']['files']} ({info['docs']['bytes']} bytes)")


@cache.command("prune")
@click.option("--older-than", "days", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Remove entries unused for this many days (0 or more; --all for everything).")
@click.option("--all", "everything", is_flag=True, help="Remove everything not in use right now.")
def cache_prune(days: float, everything: bool) -> None:
    """Remove cache entries unused for a while. Trees in use by a running flow are kept."""
    from gitflows.cache import Cache

    removed = Cache().prune(older_than=days * 86400, everything=everything)
    click.echo(f"removed {removed['trees']} tree(s), {removed['blobs']} blob(s), {removed['docs']} doc(s); "
               f"{removed['busy']} tree(s) in use kept")


def _one_line_usage_error(exc: click.ClickException) -> str:
    """click's error as one line: the message, and where a command is known, where to find its help."""
    message = " ".join(redact(exc.format_message()).split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        return f"error: {message} (see '{ctx.command_path} --help')"
    return f"error: {message}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning errors into one clear line and an exit code."""
    try:
        cli.main(args=argv, prog_name="gitflows", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        click.echo("aborted", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.ClickException as exc:
        click.echo(_one_line_usage_error(exc), err=True)
        sys.exit(EXIT_USER_ERROR)
    except GitflowsError as exc:
        if _State.debug:
            import traceback

            click.echo(redact(traceback.format_exc()), err=True)
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        import traceback

        if _State.debug:
            click.echo(redact(traceback.format_exc()), err=True)
        else:
            click.echo(f"error: unexpected {type(exc).__name__}: {redact(str(exc))} (re-run with --debug for "
                       "the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)
