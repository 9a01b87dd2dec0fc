"""``Flow.visualize()``: the flow graph through Graphviz (Prefect 1's ``flow.visualize``).

Tasks are boxes (parameters ellipses); a mapped task is a 3-D box labelled ``(mapped)`` and the edges
it maps over are dashed and labelled ``key (mapped)``. Given a ``flow_state``, each task is filled
with the colour of its state, and a mapped task's children are drawn beside it (the first
:data:`MAX_CHILDREN`, then one node counting the rest).

Needs the ``graphviz`` Python package (``pip install -e '.[viz]'``) for the graph, and Graphviz's
``dot`` program (``apt-get install graphviz``) to render it to a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gitflows.errors import ConfigurationError, LibraryMissingError

if TYPE_CHECKING:
    from gitflows.flow import Flow, FlowState

MAX_CHILDREN = 50
COLOURS = {"Success": "#28a745", "Mapped": "#97c0f0", "Failed": "#eb0000", "Skipped": "#c0c0c0"}


def graph(flow: Flow, flow_state: FlowState | None = None) -> Any:
    """A ``graphviz.Digraph`` of *flow* (coloured by *flow_state* when given)."""
    states = children = None
    if flow_state is not None:
        states = {name: s.state for name, s in flow_state.result.items()}
        children = {name: [c.state for c in s.map_states] for name, s in flow_state.result.items()
                    if s.map_states is not None}
    return from_structure(flow.structure(), states, children)


def from_structure(structure: Mapping[str, Any], states: Mapping[str, str] | None = None,
                   children: Mapping[str, list[str]] | None = None) -> Any:
    """The graph of a flow's recorded :meth:`~gitflows.flow.Flow.structure` (what the registry keeps), each
    task coloured by *states* (task name -> state) and a mapped task's *children* drawn beside it."""
    try:
        import graphviz
    except ImportError:
        raise LibraryMissingError("flow.visualize() needs the graphviz package: pip install -e '.[viz]' in the "
                                  "gitflows checkout (and Graphviz's dot program to render: apt-get install graphviz)") \
            from None
    name = str(structure.get("name", "flow"))
    dot = graphviz.Digraph(name=name, graph_attr={"rankdir": "TB", "label": name, "labelloc": "t"})
    for task in structure.get("tasks", []):
        slug = str(task.get("name"))
        attrs = {"shape": "ellipse" if task.get("kind") == "parameter" else "box"}
        label = slug
        if task.get("mapped"):
            attrs["shape"], label = "box3d", f"{slug} (mapped)"
        state = (states or {}).get(slug)
        if state is not None:
            attrs.update(style="filled", fillcolor=COLOURS.get(state, "#ffffff"))
            label += f"\n{state}"
        dot.node(node_id(slug), label, **attrs)
        if children is not None and slug in children:
            _children(dot, node_id(slug), slug, children[slug])
    for edge in structure.get("edges", []):
        label = (edge.get("key") or "") + (" (mapped)" if edge.get("mapped") else "")
        dot.edge(node_id(str(edge.get("upstream"))), node_id(str(edge.get("downstream"))), label=label.strip(),
                 **({"style": "dashed"} if edge.get("mapped") else {}))
    return dot


def node_id(slug: str) -> str:
    """A Graphviz node id for a task (names may hold characters Graphviz reads as ports, such as ':')."""
    return "task_" + "".join(c if c.isalnum() else f"_{ord(c):x}_" for c in slug)


def _children(dot: Any, parent: str, slug: str, states: list[str]) -> None:
    for index, child in enumerate(states[:MAX_CHILDREN]):
        name = f"{parent}__{index}"
        dot.node(name, f"{slug}[{index}]\n{child}", shape="box", style="filled,rounded",
                 fillcolor=COLOURS.get(child, "#ffffff"), fontsize="10")
        dot.edge(parent, name, style="dotted", arrowhead="none")
    if len(states) > MAX_CHILDREN:
        rest = states[MAX_CHILDREN:]
        failed = sum(1 for s in rest if s not in ("Success", "Mapped"))
        name = f"{parent}__more"
        dot.node(name, f"... {len(rest)} more" + (f" ({failed} not successful)" if failed else ""), shape="plaintext")
        dot.edge(parent, name, style="dotted", arrowhead="none")


def svg(dot: Any) -> str:
    """The graph drawn as SVG text (needs Graphviz's dot program)."""
    import graphviz

    try:
        return str(dot.pipe(format="svg").decode("utf-8"))
    except graphviz.ExecutableNotFound:
        raise LibraryMissingError("drawing a flow graph needs Graphviz's dot program: apt-get install graphviz") \
            from None


def render(flow: Flow, flow_state: FlowState | None, filename: str | None, format: str | None) -> Any:
    """The graph; written to *filename* (plus the extension of *format*, default ``svg``) when given."""
    dot = graph(flow, flow_state)
    if filename is None:
        return dot
    import graphviz

    fmt = format or "svg"
    if fmt not in graphviz.FORMATS:
        raise ConfigurationError(f"flow.visualize(format={fmt!r}): not a Graphviz output format (svg, png, pdf, ...)")
    try:
        dot.render(filename, format=fmt, cleanup=True)
    except graphviz.ExecutableNotFound:
        raise LibraryMissingError("flow.visualize(filename=...) needs Graphviz's dot program to render the graph: "
                                  "apt-get install graphviz (brew install graphviz on macOS)") from None
    return dot
