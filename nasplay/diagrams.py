"""Cell diagrams: a cell as a graph, laid out by depth, drawn with matplotlib or written as DOT.

Drawing must work after a plain ``pip install``, so there is no graphviz here: the layout is a
layered one done by hand (each node's column is its depth from the cell inputs, rows inside a
column ordered by the mean row of a node's predecessors to keep edges from crossing), and
matplotlib draws it. ``cell_dot`` writes the same graph in DOT for people who have graphviz.

The graph: the two cell inputs ``h[k-2]`` and ``h[k-1]``; for each block, one node per branch
holding the op's name and a combine node (``+`` or ``concat``) that is the block's hidden state;
and the cell output, the concatenation of the loose ends (``CellSpec.concat``).
"""

from __future__ import annotations

from dataclasses import dataclass

INPUT_LABELS = {0: "h[k-2]", 1: "h[k-1]"}

# Node fill colours by kind (ops by family), so a diagram reads at a glance.
COLOURS = {
    "input": "#9ecae1",
    "output": "#a1d99b",
    "combine": "#fdd49e",
    "conv": "#fcbba1",
    "sep": "#dadaeb",
    "pool": "#c7e9c0",
    "identity": "#f0f0f0",
    "other": "#fde0ef",
}


@dataclass(frozen=True)
class Node:
    key: str        # unique id, also the DOT node name
    label: str
    kind: str       # input | op | combine | output
    family: str     # colour key


@dataclass
class CellGraph:
    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    columns: list[list[str]]        # per depth, top to bottom: node keys and waypoint keys
    routes: dict[tuple[str, str], list[str]]  # edge -> the waypoints it passes, one per column


def op_family(op: str) -> str:
    if op == "identity":
        return "identity"
    if "pool" in op:
        return "pool"
    if op.startswith(("sep_", "dil_sep")):
        return "sep"
    if "conv" in op:
        return "conv"
    return "other"


def _state_key(index: int) -> str:
    return f"h{index}" if index < 2 else f"b{index - 2}"


def cell_graph(cell, reduction: bool = False) -> CellGraph:
    """The graph of a ``search_space.CellSpec``, laid out in columns by depth.

    In a reduction cell the ops that read the cell inputs work with stride 2 (as in NASNet), which
    the op nodes say (``sep_conv_3x3 /2``).
    """
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    for index, label in INPUT_LABELS.items():
        nodes[_state_key(index)] = Node(_state_key(index), label, "input", "input")
    for i, block in enumerate(cell.blocks):
        out = _state_key(i + 2)
        for k, (source, op) in enumerate(zip(block.inputs, block.ops)):
            op_key = f"{out}_op{k}"
            stride = " /2" if reduction and source < 2 else ""
            nodes[op_key] = Node(op_key, op + stride, "op", op_family(op))
            edges.append((_state_key(source), op_key))
            edges.append((op_key, out))
        symbol = "+" if block.combine == "add" else "concat"
        nodes[out] = Node(out, f"{i + 2}: {symbol}", "combine", "combine")
    nodes["out"] = Node("out", "output: concat", "output", "output")
    edges.extend((_state_key(h), "out") for h in cell.concat)
    return CellGraph(nodes, edges, *_layers(nodes, edges))


def _layers(nodes: dict[str, Node], edges: list[tuple[str, str]]):
    """Columns and edge routes of a layered (Sugiyama-style) layout.

    Columns by longest-path depth (nodes are created in topological order), each op in the
    column before its block, the output in a column of its own. An edge that skips columns gets
    a waypoint in each column it crosses, which takes a row of its own there, so no edge is
    drawn through a box. Rows are ordered by barycentre sweeps, down and up, to keep edges from
    crossing.
    """
    incoming: dict[str, list[str]] = {key: [] for key in nodes}
    for source, target in edges:
        incoming[target].append(source)
    depth: dict[str, int] = {}
    for key in nodes:           # insertion order is topological (ops before their block)
        depth[key] = 1 + max((depth[p] for p in incoming[key]), default=-1)
    for source, target in edges:  # an op sits just before its block, not at its earliest column
        if nodes[source].kind == "op":
            depth[source] = depth[target] - 1
    depth["out"] = max(depth[k] for k in nodes if k != "out") + 1
    columns: list[list[str]] = [[] for _ in range(depth["out"] + 1)]
    for key in nodes:
        columns[depth[key]].append(key)

    preds: dict[str, list[str]] = {key: [] for key in nodes}
    succs: dict[str, list[str]] = {key: [] for key in nodes}
    routes: dict[tuple[str, str], list[str]] = {}
    for source, target in edges:
        chain, previous = [], source
        for x in range(depth[source] + 1, depth[target]):
            waypoint = f"{source}>{target}@{x}"
            columns[x].append(waypoint)
            preds[waypoint], succs[waypoint] = [], []
            chain.append(waypoint)
        for a, b in zip([source] + chain, chain + [target]):
            preds[b].append(a)
            succs[a].append(b)
        routes[(source, target)] = chain

    def sweep(order, neighbours):
        row = {key: r / max(len(col), 1) for col in columns for r, key in enumerate(col)}
        for col in order:
            col.sort(key=lambda k: sum(row[n] for n in neighbours[k]) / len(neighbours[k])
                     if neighbours[k] else row[k])
            row.update({key: r / max(len(col), 1) for r, key in enumerate(col)})

    for _ in range(2):
        sweep(columns[1:], preds)
        sweep(columns[-2::-1], succs)
    sweep(columns[1:], preds)
    return columns, routes


def draw_cell(ax, cell, title: str = "", reduction: bool = False) -> None:
    """Draw ``cell`` on a matplotlib Axes: boxes for nodes, arrows for edges, left to right."""
    graph = cell_graph(cell, reduction=reduction)
    tallest = max(len(col) for col in graph.columns)
    texts, points = {}, {}
    for x, col in enumerate(graph.columns):
        for r, key in enumerate(col):
            points[key] = (x, (len(col) - 1) / 2 - r)
            node = graph.nodes.get(key)
            if node is None:      # a waypoint
                continue
            texts[key] = ax.text(
                *points[key], node.label, ha="center", va="center", zorder=3,
                fontsize=9, fontweight="bold" if node.kind != "op" else "normal",
                bbox={"boxstyle": "round,pad=0.35", "facecolor": COLOURS[node.family],
                      "edgecolor": "#555555", "linewidth": 0.8})
    line = {"color": "#444444", "linewidth": 0.9}
    for source, target in graph.edges:
        waypoints = [points[w] for w in graph.routes[(source, target)]]
        start = (texts[source], (1.0, 0.5))
        if waypoints:
            ax.annotate("", xy=waypoints[0], xycoords="data", xytext=start[1],
                        textcoords=start[0], zorder=2,
                        arrowprops={"arrowstyle": "-", "shrinkA": 2, "shrinkB": 0, **line})
            xs, ys = zip(*waypoints)
            ax.plot(xs, ys, zorder=2, **line)
            start = ("data", waypoints[-1])
        ax.annotate("", xy=(0.0, 0.5), xycoords=texts[target], xytext=start[1],
                    textcoords=start[0], zorder=2,
                    arrowprops={"arrowstyle": "-|>", "shrinkA": 0 if waypoints else 2,
                                "shrinkB": 2, **line})
    ax.set_xlim(-0.6, len(graph.columns) - 0.4)
    ax.set_ylim(-(tallest - 1) / 2 - 0.6, (tallest - 1) / 2 + 0.6)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)


def cell_figure(cell, path, title: str = "", reduction: bool = False) -> None:
    """Draw ``cell`` into a PNG at ``path``, sized to the layout so labels stay readable."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, nothing to close

    graph = cell_graph(cell, reduction=reduction)
    width = 1.9 * len(graph.columns) + 0.5
    height = 0.55 * max(len(col) for col in graph.columns) + 1.0
    fig = Figure(figsize=(width, height))
    draw_cell(fig.subplots(), cell, title=title, reduction=reduction)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def cell_dot(cell, name: str = "cell", reduction: bool = False) -> str:
    """The cell as a graphviz DOT digraph (``dot -Tpng cell.dot -o cell.png``)."""
    graph = cell_graph(cell, reduction=reduction)
    lines = [f"digraph {_dot_id(name)} {{", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    columns = [[key for key in col if key in graph.nodes] for col in graph.columns]
    for col in columns:
        for key in col:
            node = graph.nodes[key]
            lines.append(f'  {key} [label="{node.label}", fillcolor="{COLOURS[node.family]}"];')
    for col in columns:
        if len(col) > 1:
            lines.append("  { rank=same; " + "; ".join(col) + "; }")
    lines.extend(f"  {source} -> {target};" for source, target in graph.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_id(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"cell_{cleaned}"
