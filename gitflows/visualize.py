"""``Flow.visualize()``: the flow graph through Graphviz (Prefect 1's ``flow.visualize``).

Tasks are boxes (parameters ellipses); a mapped task is a 3-D box labelled ``(mapped)`` and the edges
it maps over are dashed and labelled ``key (mapped)``. Given a ``flow_state``, each task is filled
with the colour of its state, and a mapped task's children are drawn beside it (the first
:data:`MAX_CHILDREN`, then one node counting the rest).

Needs the ``graphviz`` Python package (``pip install -e '.[viz]'``) for the graph, and Graphviz's
``dot`` program (``apt-get install graphviz``) to render it to a file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitflows.errors import ConfigurationError, LibraryMissingError

if TYPE_CHECKING:
    from gitflows.flow import Flow, FlowState, TaskState

MAX_CHILDREN = 50
COLOURS = {"Success": "#28a745", "Mapped": "#97c0f0", "Failed": "#eb0000", "Skipped": "#c0c0c0"}


def graph(flow: Flow, flow_state: FlowState | None = None) -> Any:
    """A ``graphviz.Digraph`` of *flow* (coloured by *flow_state* when given)."""
    try:
        import graphviz
    except ImportError:
        raise LibraryMissingError("flow.visualize() needs the graphviz package: pip install -e '.[viz]' in the "
                                  "gitflows checkout (and Graphviz's dot program to render: apt-get install graphviz)") \
            from None
    from gitflows.flow import Parameter

    dot = graphviz.Digraph(name=flow.name, graph_attr={"rankdir": "TB", "label": flow.name, "labelloc": "t"})
    for t in flow.get_tasks():
        slug = flow.slug(t)
        attrs = {"shape": "ellipse" if isinstance(t, Parameter) else "box"}
        label = slug
        if flow.is_mapped(t):
            attrs["shape"], label = "box3d", f"{slug} (mapped)"
        state = flow_state.result.get(slug) if flow_state is not None else None
        if state is not None:
            attrs.update(style="filled", fillcolor=COLOURS.get(state.state, "#ffffff"))
            label += f"\n{state.state}"
        dot.node(_node_id(flow, t), label, **attrs)
        if state is not None and state.map_states is not None:
            _children(dot, _node_id(flow, t), slug, state.map_states)
    for edge in sorted(flow.edges, key=lambda e: (flow.slug(e.upstream), flow.slug(e.downstream), e.key or "")):
        label = (edge.key or "") + (" (mapped)" if edge.mapped else "")
        dot.edge(_node_id(flow, edge.upstream), _node_id(flow, edge.downstream), label=label.strip(),
                 **({"style": "dashed"} if edge.mapped else {}))
    return dot


def _node_id(flow: Flow, t: Any) -> str:
    """A Graphviz node id for task *t* (slugs may hold characters Graphviz reads as ports, such as ':')."""
    return "task_" + "".join(c if c.isalnum() else f"_{ord(c):x}_" for c in flow.slug(t))


def _children(dot: Any, parent: str, slug: str, states: list[TaskState]) -> None:
    for index, child in enumerate(states[:MAX_CHILDREN]):
        name = f"{parent}__{index}"
        dot.node(name, f"{slug}[{index}]\n{child.state}", shape="box", style="filled,rounded",
                 fillcolor=COLOURS.get(child.state, "#ffffff"), fontsize="10")
        dot.edge(parent, name, style="dotted", arrowhead="none")
    if len(states) > MAX_CHILDREN:
        rest = states[MAX_CHILDREN:]
        failed = sum(1 for s in rest if not s.is_successful())
        name = f"{parent}__more"
        dot.node(name, f"... {len(rest)} more" + (f" ({failed} not successful)" if failed else ""), shape="plaintext")
        dot.edge(parent, name, style="dotted", arrowhead="none")


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
