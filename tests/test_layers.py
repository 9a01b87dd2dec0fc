"""Imports run down the layers of docs/ARCHITECTURE (core at the bottom, the CLI at the top), never up,
and never sideways between backend families (a host never imports a blob store, and so on). Every
``import gitflows...`` in the package is checked, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gitflows"

# (rank, family): a module may import any lower rank, and its own rank only within its own family
LAYERS: list[tuple[int, str, tuple[str, ...]]] = [
    (0, "core", ("gitflows.version", "gitflows.errors", "gitflows.redact", "gitflows.secrets", "gitflows.context",
                 "gitflows.naming", "gitflows.imports", "gitflows.inspection", "gitflows.schedules", "gitflows.outcome",
                 "gitflows.script", "gitflows.flow", "gitflows.flowrun", "gitflows.executors", "gitflows.visualize",
                 "gitflows.envelope", "gitflows.params",
                 "gitflows.cache", "gitflows.localgit")),
    (1, "remote", ("gitflows.remote", "gitflows.aws")),
    (2, "hosts", ("gitflows.hosts",)),
    (2, "blobs", ("gitflows.blobs",)),
    (2, "images", ("gitflows.docker",)),
    (3, "loader", ("gitflows.loader",)),
    (4, "storage", ("gitflows.storage", "gitflows.utilities", "gitflows.child")),
    (5, "registry", ("gitflows.registry",)),
    (5, "review", ("gitflows.review",)),
    (6, "register", ("gitflows.register", "gitflows.check", "gitflows.doctor")),
    (7, "agent", ("gitflows.agent",)),
    (7, "ui", ("gitflows.ui",)),
    (8, "cli", ("gitflows.cli", "gitflows.__main__", "gitflows.hook_scripts")),
]

# Deliberate exceptions, each with its reason (docs/design.md).
ALLOWED = {
    # the package's public API re-exports the storages and utilities, as Prefect's `prefect` did
    ("gitflows", "*"),
    # review describes flows the way registration fingerprints them: the same child-process runner
    ("gitflows.review", "gitflows.register"),
}


def layer_of(module: str) -> tuple[int, str] | None:
    for rank, family, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank, family
    return None


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path, module: str) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("gitflows")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("gitflows"):
                # `from gitflows.hosts import smart_http` imports a module: count the submodule
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules()]
                out += [(t, node.lineno) for t in (subs or [target])]
    return out


def allowed(importer: str, target: str) -> bool:
    for who, what in ALLOWED:
        mine = importer == who or (who != "gitflows" and importer.startswith(who + "."))
        if mine and (what == "*" or target == what or target.startswith(what + ".")):
            return True
    return False


def test_every_module_has_a_layer():
    missing = sorted(m for m in modules() if m != "gitflows" and layer_of(m) is None)
    assert not missing, f"modules without a layer in tests/test_layers.py: {missing}"


def test_imports_run_down_the_layers_and_never_sideways():
    problems = []
    for module, path in sorted(modules().items()):
        mine = layer_of(module)
        if mine is None:
            continue
        for target, line in imports_of(path, module):
            theirs = layer_of(target)
            if theirs is None or allowed(module, target):
                continue
            if theirs[0] > mine[0] or (theirs[0] == mine[0] and theirs[1] != mine[1]):
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({mine[1]}) imports "
                                f"{target} ({theirs[1]})")
    assert not problems, "imports against the layers:\n" + "\n".join(problems)
