"""The ``gitflows`` command line.

Exit codes: 0 success; 1 the command ran and found a problem (``check``
problems, a failed flow run); 2 bad usage or an error the user can act on
(missing file, flow not found, bad configuration, integrity); 3 an unexpected
internal error (run again with ``--debug`` and report it).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from gitflows.errors import GitflowsError
from gitflows.redact import redact
from gitflows.version import __version__

EXIT_OK, EXIT_PROBLEMS, EXIT_USER_ERROR, EXIT_INTERNAL = 0, 1, 2, 3


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("n=5", "name=bob")`` -> ``{"n": 5, "name": "bob"}``: JSON when it parses, else the string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--param")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


class _State:
    debug = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gitflows")
@click.option("--debug", is_flag=True, help="Show debug logs and full tracebacks.")
@click.option("-v", "--verbose", is_flag=True, help="Show progress logs (INFO).")
def cli(debug: bool, verbose: bool) -> None:
    """gitflows: store flows where your code lives and load exactly the registered version back.

    \b
    Exit codes: 0 ok, 1 problems found / flow failed, 2 usage or user error,
    3 internal error (re-run with --debug).
    """
    _State.debug = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("gitflows").setLevel(level)


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
def check(files: tuple[str, ...]) -> None:
    """Check flow scripts offline, without running them.

    Reads each FILE's syntax tree: it parses, defines flows with literal,
    unique names, each flow has a storage, a repository storage's path is the
    file's real path in the repo and its repo matches remote 'origin', and the
    sibling modules it imports exist. Prints one line per problem and exits 1
    when there is any.
    """
    from gitflows.check import check_files

    if not files:
        click.echo("gitflows check: no files given", err=True)
        return
    problems, count = check_files(list(files))
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s) in {len(files)} file(s)", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"checked {len(files)} file(s), {count} flow(s): ok", err=True)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--flow", "flow_name", metavar="NAME", help="Which flow, when the file defines several.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter value (repeatable). Read as JSON when it parses (n=5 is the number 5), "
                   "else as a string.")
def run(file: str, flow_name: str | None, params: tuple[str, ...]) -> None:
    """Run a flow from FILE in this process and print each task's outcome."""
    from gitflows.script import extract_flow_from_file

    parameters = parse_params(params)
    flow = extract_flow_from_file(file_path=file, flow_name=flow_name)
    click.echo(f"running flow {flow.name!r} from {file}", err=True)
    state = flow.run(parameters=parameters)
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
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def flows(file: str, as_json: bool) -> None:
    """List the flows FILE defines, with their storage.

    Runs the script when its imports are installed (exact storage settings);
    otherwise reads its syntax tree and says so.
    """
    from gitflows.errors import ScriptError
    from gitflows.script import extract_flows, inspect_file

    rows: list[dict[str, Any]] = []
    try:
        for flow in extract_flows(file_path=file):
            storage = flow.storage.serialize() if flow.storage is not None else None
            rows.append({"name": flow.name, "tasks": len(flow.tasks), "storage": storage,
                         "fingerprint": flow.fingerprint()})
        mode = "executed"
    except ScriptError as exc:
        if not isinstance(exc.__cause__, ImportError):
            raise
        click.echo(f"note: {exc}; showing what the syntax tree says instead", err=True)
        info = inspect_file(file)
        for sf in info.flows:
            storage = {"type": sf.storage.type, **sf.storage.args} if sf.storage else None
            rows.append({"name": sf.name, "line": sf.lineno, "storage": storage})
        mode = "static"
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
@click.option("--older-than", "days", type=float, default=30.0, show_default=True,
              help="Remove entries unused for this many days.")
@click.option("--all", "everything", is_flag=True, help="Remove everything not in use right now.")
def cache_prune(days: float, everything: bool) -> None:
    """Remove cache entries unused for a while. Trees in use by a running flow are kept."""
    from gitflows.cache import Cache

    removed = Cache().prune(older_than=days * 86400, everything=everything)
    click.echo(f"removed {removed['trees']} tree(s), {removed['blobs']} blob(s), {removed['docs']} doc(s); "
               f"{removed['busy']} tree(s) in use kept")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning errors into one clear line and an exit code."""
    try:
        cli.main(args=argv, prog_name="gitflows", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USER_ERROR)
    except GitflowsError as exc:
        if _State.debug:
            import traceback

            click.echo(redact(traceback.format_exc()), err=True)
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        import traceback

        if _State.debug:
            click.echo(redact(traceback.format_exc()), err=True)
        else:
            click.echo(f"error: unexpected {type(exc).__name__}: {redact(str(exc))} (re-run with --debug for "
                       "the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)
