"""Cell diagrams: a cell as a graph, laid out by depth, drawn with matplotlib or written as DOT.

Drawing must work after a plain ``pip install``, so there is no graphviz here: the layered
layout is ``nasplay.report.layout``'s, and matplotlib draws it. ``cell_dot`` writes the same graph,
in the same order, in DOT for people who have graphviz.

The graph: the two cell inputs ``h[k-2]`` and ``h[k-1]``; for each block, one node per branch
holding the op's name and a combine node (``+`` or ``concat``) that is the block's hidden state,
numbered as ``print(genotype)`` numbers it; and the cell output, the concatenation of the loose
ends (``CellSpec.concat``).

Placement, left to right: a block's column is its depth, the longest path from the cell inputs
in blocks, so everything a block reads lies to its left; its two ops stand in the column just
before it. Within a column blocks run in index order, top to bottom; ops and passing edges are
placed around them to avoid crossings (``nasplay.report.layout``).

An edge genotype (``nb201``, NAS-Bench-201's cell) is drawn as its own DAG instead
(``edge_cell_figure``, ``edge_cell_dot``): nodes 0 (the input) to the output in a row, left to
right, one arrow per edge labelled with its op. Edges between neighbours run straight; longer
ones arc, the two of span 2 on opposite sides and the longest above them, so no two arrows cross
in a 4-node cell. A ``none`` edge (zeros: no connection) is drawn dashed and grey, and the
legend says so, so the drawing shows which connections the cell really has.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasplay.report import layout as layered

INPUT_LABELS = {0: "h[k-2]", 1: "h[k-1]"}

# Node fill colours by kind (ops by family), so a diagram reads at a glance.
COLOURS = {
    "input": "#9ecae1",
    "output": "#74c476",
    "combine": "#fdd49e",
    "conv": "#fcbba1",
    "sep": "#dadaeb",
    "pool": "#c7e9c0",
    "identity": "#f0f0f0",
    "other": "#fde0ef",
    "node": "#fdd49e",
    "none": "#ffffff",
}
# What the legend calls each op family.
FAMILY_NAMES = {
    "conv": "convolution",
    "sep": "separable convolution",
    "pool": "pooling",
    "identity": "identity",
    "other": "other op (block)",
}
_COLUMN_INCHES = 1.9
_UNIT_INCHES = 0.55
_PASS = 0.3             # half the level stretch an edge runs through a column it passes


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
    layout: layered.Layout
    block_depth: dict[str, int]     # combine node key -> depth in blocks (inputs: 0)

    @property
    def columns(self) -> list[list[str]]:
        """Per column, top to bottom: node keys and waypoint keys."""
        return self.layout.columns

    @property
    def routes(self) -> dict[tuple[str, str], list[str]]:
        """Edge -> the waypoints it passes, one per column it crosses."""
        return self.layout.routes

    def crossings(self) -> int:
        """How many pairs of edges cross in this layout."""
        return layered.crossings(self.layout.columns, self.layout.segments)


def op_family(op: str) -> str:
    if op in ("identity", "skip_connect"):
        return "identity"
    if op == "none":
        return "none"
    if "pool" in op:
        return "pool"
    if op.startswith(("sep_", "dil_sep")):
        return "sep"
    if "conv" in op:
        return "conv"
    return "other"


def _state_key(index: int) -> str:
    return f"h{index}" if index < 2 else f"b{index - 2}"


def block_depths(cell) -> list[int]:
    """Each block's depth: 1 + the deepest block it reads (the cell inputs have depth 0)."""
    depth = [0, 0]
    for block in cell.blocks:
        depth.append(1 + max(depth[source] for source in block.inputs))
    return depth[2:]


def cell_graph(cell, reduction: bool = False, order: str = "barycenter") -> CellGraph:
    """The graph of a ``search_space.CellSpec``, laid out in columns by depth.

    In a reduction cell the ops that read the cell inputs work with stride 2 (as in NASNet), which
    the op nodes say (``sep_conv_3x3 /2``). ``order="index"`` keeps every column in creation
    order (the naive layout, to compare against).
    """
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    depths = block_depths(cell)
    column: dict[str, int] = {}
    for index, label in INPUT_LABELS.items():
        nodes[_state_key(index)] = Node(_state_key(index), label, "input", "input")
        column[_state_key(index)] = 0
    for i, (block, depth) in enumerate(zip(cell.blocks, depths)):
        out = _state_key(i + 2)
        for k, (source, op) in enumerate(zip(block.inputs, block.ops)):
            op_key = f"{out}_op{k}"
            stride = " /2" if reduction and source < 2 else ""
            nodes[op_key] = Node(op_key, op + stride, "op", op_family(op))
            column[op_key] = 2 * depth - 1
            edges.append((_state_key(source), op_key))
            edges.append((op_key, out))
        symbol = "+" if block.combine == "add" else "concat"
        nodes[out] = Node(out, f"{i + 2}: {symbol}", "combine", "combine")
        column[out] = 2 * depth
    nodes["out"] = Node("out", "output: concat", "output", "output")
    column["out"] = 2 * max(depths) + 1
    edges.extend((_state_key(h), "out") for h in cell.concat)
    fixed = frozenset(k for k, n in nodes.items() if n.kind in ("input", "combine"))
    lay = layered.layered_layout(list(nodes), edges, column, fixed=fixed, order=order)
    depth_of = {_state_key(i + 2): d for i, d in enumerate(depths)}
    return CellGraph(nodes, edges, lay, depth_of)


def draw_cell(ax, cell, title: str = "", reduction: bool = False, legend: bool = True) -> None:
    """Draw ``cell`` on a matplotlib Axes: boxes for nodes, arrows for edges, left to right,
    and a legend of the op colours below."""
    graph = cell_graph(cell, reduction=reduction)
    points = {key: (x, -graph.layout.y[key])
              for x, col in enumerate(graph.columns) for key in col}
    texts = {}
    for key, node in graph.nodes.items():
        texts[key] = ax.text(
            *points[key], node.label, ha="center", va="center", zorder=3,
            fontsize=9, fontweight="bold" if node.kind != "op" else "normal",
            bbox={"boxstyle": "round,pad=0.35", "facecolor": COLOURS[node.family],
                  "edgecolor": "#555555", "linewidth": 0.8})
    for source, target in graph.edges:    # level through each column it passes, clear of boxes
        route = [(x + dx, y) for w in graph.routes[(source, target)]
                 for x, y in [points[w]] for dx in (-_PASS, _PASS)]
        _draw_edge(ax, texts[source], texts[target], route)
    ys = [y for _, y in points.values()]
    ax.set_xlim(-0.6, len(graph.columns) - 0.4)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    if legend:
        _legend(ax, graph, reduction)


def _draw_edge(ax, source, target, waypoints) -> None:
    """From the right of ``source`` through ``waypoints`` (data coordinates) to an arrow head
    at the left of ``target``."""
    line = {"color": "#444444", "linewidth": 0.9}
    start, start_coords = (1.0, 0.5), source
    if waypoints:
        ax.annotate("", xy=waypoints[0], xycoords="data", xytext=start, textcoords=source,
                    zorder=2, arrowprops={"arrowstyle": "-", "shrinkA": 2, "shrinkB": 0, **line})
        xs, ys = zip(*waypoints)
        ax.plot(xs, ys, zorder=2, solid_capstyle="round", **line)
        start, start_coords = waypoints[-1], "data"
    ax.annotate("", xy=(0.0, 0.5), xycoords=target, xytext=start, textcoords=start_coords,
                zorder=2, arrowprops={"arrowstyle": "-|>", "shrinkA": 0 if waypoints else 2,
                                      "shrinkB": 2, **line})


def _legend(ax, graph: CellGraph, reduction: bool) -> None:
    """One patch per op family the cell uses (in FAMILY_NAMES order), below the drawing."""
    from matplotlib.patches import Patch

    used = {n.family for n in graph.nodes.values() if n.kind == "op"}
    handles = [Patch(facecolor=COLOURS[f], edgecolor="#555555", linewidth=0.8, label=name)
               for f, name in FAMILY_NAMES.items() if f in used]
    if reduction and any(n.label.endswith(" /2") for n in graph.nodes.values()):
        handles.append(Patch(facecolor="none", edgecolor="none", label="/2: stride 2"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
              ncol=len(handles), frameon=False, fontsize=8, handlelength=1.4,
              columnspacing=1.2)


def cell_figure(cell, path, title: str = "", reduction: bool = False) -> None:
    """Draw ``cell`` into a PNG at ``path``, sized to the layout so labels stay readable."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, nothing to close

    graph = cell_graph(cell, reduction=reduction)
    ys = graph.layout.y.values()
    width = _COLUMN_INCHES * len(graph.columns) + 0.5
    height = _UNIT_INCHES * (max(ys) - min(ys) + 1.2) + 1.0
    fig = Figure(figsize=(width, height))
    draw_cell(fig.subplots(), cell, title=title, reduction=reduction)
    save_png(fig, path)


def save_png(fig, path) -> None:
    """A figure as PNG bytes first, then one atomic replace: a viewer never sees half a file."""
    import io

    from search_space.files import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def cell_dot(cell, name: str = "cell", reduction: bool = False, title: str = "") -> str:
    """The cell as a graphviz DOT digraph (``dot -Tpng cell.dot -o cell.png``), columns and
    their order as in the PNG."""
    graph = cell_graph(cell, reduction=reduction)
    lines = [f"digraph {_dot_id(name)} {{", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    if title:
        lines.insert(2, f'  label="{_dot_text(title)}"; labelloc=t;')
    columns = [[key for key in col if key in graph.nodes] for col in graph.columns]
    for col in columns:
        for key in col:
            node = graph.nodes[key]
            lines.append(f'  {key} [label="{_dot_text(node.label)}", '
                         f'fillcolor="{COLOURS[node.family]}"];')
    for col in columns:
        if len(col) > 1:
            lines.append("  { rank=same; " + "; ".join(col) + "; }")
    lines.extend(f"  {source} -> {target};" for source, target in graph.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_id(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"cell_{cleaned}"


# -- edge genotypes (NAS-Bench-201's cell) ---------------------------------------------------

_NODE_SPACING = 2.6     # inches between neighbouring nodes: room for "nor_conv_3x3" between
_NODE_RADIUS = 0.3
_NONE_COLOUR = "#999999"


@dataclass(frozen=True)
class EdgeArrow:
    source: int
    target: int
    op: str
    rad: float          # matplotlib's arc3 curvature: 0 straight, < 0 above, > 0 below

    def label_point(self) -> tuple[float, float]:
        """Where the op's label goes: the middle of the arc (arc3 is a quadratic Bezier whose
        control point lies ``rad * length`` off the chord's middle; its middle, half that)."""
        x0, x1 = self.source * _NODE_SPACING, self.target * _NODE_SPACING
        return (x0 + x1) / 2, -self.rad * (x1 - x0) / 2


def edge_arrows(genotype) -> list[EdgeArrow]:
    """The arrows of an edge genotype's drawing, in ``genotype.edges()`` order: neighbours
    straight; span 2 above from an even source, below from an odd one; longer spans above,
    higher the longer (so they enclose the shorter arcs rather than cross them)."""
    arrows = []
    for source, target, op in genotype.edges():
        span = target - source
        if span == 1:
            rad = 0.0
        elif span == 2:
            rad = -0.28 if source % 2 == 0 else 0.28
        else:
            rad = -(0.28 + 0.04 * span)
        arrows.append(EdgeArrow(source, target, op, rad))
    return arrows


def _node_label(j: int, last: int) -> str:
    return {0: "input", last: "output"}.get(j, "")


def draw_edge_cell(ax, genotype, title: str = "", legend: bool = True) -> None:
    """Draw an edge genotype on a matplotlib Axes (see the module docstring)."""
    from matplotlib.patches import Circle, FancyArrowPatch

    last = genotype.num_nodes - 1
    circles = []
    for j in range(genotype.num_nodes):
        family = "input" if j == 0 else "output" if j == last else "node"
        circle = Circle((j * _NODE_SPACING, 0.0), _NODE_RADIUS, facecolor=COLOURS[family],
                        edgecolor="#555555", linewidth=0.9, zorder=3)
        ax.add_patch(circle)
        circles.append(circle)
        ax.text(j * _NODE_SPACING, 0.0, str(j), ha="center", va="center", fontsize=11,
                fontweight="bold", zorder=4)
        if _node_label(j, last):
            ax.text(j * _NODE_SPACING + (-1 if j == 0 else 1) * (_NODE_RADIUS + 0.12), 0.0,
                    _node_label(j, last), ha="right" if j == 0 else "left", va="center",
                    fontsize=9, color="#333333")
    for arrow in edge_arrows(genotype):
        none = arrow.op == "none"
        colour = _NONE_COLOUR if none else "#444444"
        ax.add_patch(FancyArrowPatch(
            patchA=circles[arrow.source], patchB=circles[arrow.target],
            posA=circles[arrow.source].center, posB=circles[arrow.target].center,
            connectionstyle=f"arc3,rad={arrow.rad}", arrowstyle="-|>", mutation_scale=12,
            color=colour, linewidth=1.0, linestyle="--" if none else "-", zorder=2))
        ax.text(*arrow.label_point(), arrow.op, ha="center", va="center", zorder=3, fontsize=9,
                color=_NONE_COLOUR if none else "black", fontstyle="italic" if none else "normal",
                bbox={"boxstyle": "round,pad=0.3", "facecolor": COLOURS[op_family(arrow.op)],
                      "edgecolor": colour, "linewidth": 0.8, "linestyle": "--" if none else "-"})
    _frame_edge_cell(ax, genotype, title)
    if legend:
        _edge_legend(ax, genotype)


def _frame_edge_cell(ax, genotype, title: str) -> None:
    points = [arrow.label_point()[1] for arrow in edge_arrows(genotype)] + [0.0]
    ax.set_xlim(-1.2, (genotype.num_nodes - 1) * _NODE_SPACING + 1.2)
    ax.set_ylim(min(points) - 0.55, max(points) + 0.45)
    ax.set_aspect("equal")   # arc3's curves are computed on screen: their middles stay put
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)


def _edge_legend(ax, genotype) -> None:
    """The op families the cell uses, then ``none`` as a dashed line, and what a node is."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    used = {op_family(op) for _, _, op in genotype.edges()}
    handles = [Patch(facecolor=COLOURS[f], edgecolor="#555555", linewidth=0.8, label=name)
               for f, name in FAMILY_NAMES.items() if f in used]
    if "none" in used:
        handles.append(Line2D([], [], color=_NONE_COLOUR, linestyle="--",
                              label="none: zeros, no connection"))
    handles.append(Patch(facecolor=COLOURS["node"], edgecolor="#555555", linewidth=0.8,
                         label="node: sum of its incoming edges"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
              ncol=len(handles), frameon=False, fontsize=8, handlelength=1.6,
              columnspacing=1.2)


def edge_cell_figure(genotype, path, title: str = "") -> None:
    """Draw an edge genotype into a PNG at ``path`` (at 1 inch per data unit, so labels keep
    their room at any number of nodes)."""
    from matplotlib.figure import Figure

    points = [arrow.label_point()[1] for arrow in edge_arrows(genotype)] + [0.0]
    width = (genotype.num_nodes - 1) * _NODE_SPACING + 2.4
    fig = Figure(figsize=(width, max(points) - min(points) + 2.0))
    draw_edge_cell(fig.subplots(), genotype, title=title)
    save_png(fig, path)


def arch_string(genotype) -> str:
    """NAS-Bench-201's cell string of an edge genotype (``|nor_conv_3x3~0|+|...|``, how
    NAS-Bench-201's table and papers name a cell), or "" when its space (unknown to this
    process, or without those ops) cannot write it."""
    from search_space import get_space

    try:
        return get_space(genotype.space).to_arch_str(genotype)
    except (ValueError, AttributeError):
        return ""


def edge_cell_dot(genotype, name: str = "cell", title: str = "") -> str:
    """An edge genotype as a graphviz DOT digraph, nodes left to right, an edge per op (``none``
    dashed and grey), in ``genotype.edges()`` order."""
    last = genotype.num_nodes - 1
    lines = [f"digraph {_dot_id(name)} {{", "  rankdir=LR;",
             '  node [shape=circle, style=filled, fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    if title:
        lines.insert(2, f'  label="{_dot_text(title)}"; labelloc=t;')
    for j in range(genotype.num_nodes):
        family = "input" if j == 0 else "output" if j == last else "node"
        label = f"{j}\\n{_node_label(j, last)}" if _node_label(j, last) else str(j)
        lines.append(f'  n{j} [label="{label}", fillcolor="{COLOURS[family]}"];')
    for source, target, op in genotype.edges():
        style = f', style=dashed, color="{_NONE_COLOUR}", fontcolor="{_NONE_COLOUR}"' \
            if op == "none" else ""
        lines.append(f'  n{source} -> n{target} [label="{_dot_text(op)}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
