"""A small layered (Sugiyama-style) graph layout, so cell diagrams need no system graphviz.

The three classic steps, each kept simple because a cell has at most a few dozen nodes:

1. Layers are given by the caller (for a cell: depth from the inputs). An edge that skips layers
   is split by one waypoint per layer it crosses, so every edge joins neighbouring layers and no
   edge is drawn through a box.
2. Order within each layer: barycentre sweeps down and up, then swaps of any two nodes of a layer
   while that removes crossings; the ordering with the fewest crossings wins, and the caller's
   order (``index`` order) is one of the candidates, so the result never crosses more than it.
   Nodes marked ``fixed`` keep their given relative order inside a layer (a cell's blocks stay
   in index order, top to bottom), the others move around them.
3. Vertical positions: the order is kept, boxes keep their distance, and within that every node
   moves as close as it can to its neighbours (least squares over the edges, solved a layer at a
   time by isotonic regression). Edge pieces between waypoints weigh most, so a long edge runs
   straight instead of zig-zagging from row to row through empty space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

BOX_HALF = 0.5          # half the vertical room a box takes, in layout units
WAYPOINT_HALF = 0.15    # half the room a passing edge takes
_SWEEPS = 4
_PLACEMENT_ROUNDS = 60


@dataclass
class Layout:
    """Where everything goes: ``columns[x]`` lists layer x's keys top to bottom (nodes and
    waypoints), ``routes[(u, v)]`` the waypoints edge u -> v passes, ``y[key]`` the vertical
    position of each key (grows downwards), ``segments`` the edges between adjacent layers."""

    columns: list[list[str]]
    routes: dict[tuple[str, str], list[str]]
    y: dict[str, float]
    segments: list[tuple[str, str]]

    @property
    def waypoints(self) -> set[str]:
        return {w for chain in self.routes.values() for w in chain}


def layered_layout(nodes: list[str], edges: list[tuple[str, str]], layer: dict[str, int],
                   fixed: frozenset[str] = frozenset(), order: str = "barycenter") -> Layout:
    """Lay out a DAG whose ``layer`` numbers grow along every edge.

    ``nodes`` in the order they should appear when nothing better is known (top to bottom);
    ``order="index"`` keeps that order (the naive layout, for comparison), ``"barycenter"``
    reduces crossings as the module docstring says.
    """
    if order not in ("index", "barycenter"):
        raise ValueError(f"order must be 'index' or 'barycenter', got {order!r}")
    columns, routes, segments = _split_long_edges(nodes, edges, layer)
    if order == "barycenter":
        rank = {key: r for r, key in enumerate(nodes) if key in fixed}
        columns = _reduce_crossings(columns, segments, rank)
    waypoints = {w for chain in routes.values() for w in chain}
    y = _place(columns, segments, waypoints)
    _level_chains(columns, routes, y, waypoints)
    return Layout(columns, routes, y, segments)


def _split_long_edges(nodes, edges, layer):
    columns: list[list[str]] = [[] for _ in range(max(layer[n] for n in nodes) + 1)]
    for key in nodes:
        columns[layer[key]].append(key)
    routes, segments = {}, []
    for source, target in edges:
        if layer[target] <= layer[source]:
            raise ValueError(f"edge {source} -> {target} does not go to a later layer")
        chain = [f"{source}>{target}@{x}" for x in range(layer[source] + 1, layer[target])]
        for x, waypoint in zip(range(layer[source] + 1, layer[target]), chain):
            columns[x].append(waypoint)
        segments.extend(zip([source] + chain, chain + [target]))
        routes[(source, target)] = chain
    return columns, routes, segments


def crossings(columns: list[list[str]], segments: list[tuple[str, str]]) -> int:
    """How many pairs of edge pieces cross, drawn straight between neighbouring layers in the
    order of ``columns`` (pieces that share an end do not cross)."""
    position = {key: r for col in columns for r, key in enumerate(col)}
    return sum(_gap_crossings(pieces, position) for pieces in _by_gap(columns, segments))


def _by_gap(columns, segments) -> list[list[tuple[str, str]]]:
    layer = {key: x for x, col in enumerate(columns) for key in col}
    gaps: list[list[tuple[str, str]]] = [[] for _ in range(max(len(columns) - 1, 0))]
    for source, target in segments:
        gaps[layer[source]].append((source, target))
    return gaps


def _gap_crossings(pieces, position) -> int:
    return sum(1 for (a, b), (c, d) in combinations(pieces, 2)
               if (position[a] - position[c]) * (position[b] - position[d]) < 0)


def _reduce_crossings(columns, segments, fixed: dict[str, int]):
    """The layer orders with the fewest crossings among the given one, barycentre sweeps and
    pairwise swaps (see the module docstring). ``fixed`` ranks the keys whose relative order
    stays."""
    preds: dict[str, list[str]] = {key: [] for col in columns for key in col}
    succs: dict[str, list[str]] = {key: [] for col in columns for key in col}
    for source, target in segments:
        preds[target].append(source)
        succs[source].append(target)
    best = [list(col) for col in columns]
    best_count = crossings(best, segments)
    current = [list(col) for col in columns]
    for _ in range(_SWEEPS):
        for x in range(1, len(current)):
            _sort_by_barycentre(current, x, preds, fixed)
        for x in range(len(current) - 2, -1, -1):
            _sort_by_barycentre(current, x, succs, fixed)
        count = crossings(current, segments)
        if count < best_count:
            best, best_count = [list(col) for col in current], count
    _swap_while_better(best, segments, fixed)
    return best


def _sort_by_barycentre(columns, x, neighbours, fixed) -> None:
    """Sort layer ``x`` by the mean position of each key's neighbours in the layer next to it;
    keys without neighbours there keep their place; fixed keys keep their relative order."""
    position = {key: r / max(len(col), 1) for col in columns for r, key in enumerate(col)}
    col = columns[x]

    def key_of(key):
        around = neighbours[key]
        return sum(position[n] for n in around) / len(around) if around else position[key]

    col.sort(key=key_of)
    slots = [r for r, key in enumerate(col) if key in fixed]   # fixed keys back in rank order
    for r, key in zip(slots, sorted((col[r] for r in slots), key=fixed.get)):
        col[r] = key


def _swap_while_better(columns, segments, fixed) -> None:
    """Swap any two keys of a layer (not two fixed ones) while that lowers the crossings."""
    improved = True
    while improved:
        improved = False
        for x, col in enumerate(columns):
            for i, j in combinations(range(len(col)), 2):
                if col[i] in fixed and col[j] in fixed:
                    continue
                if _fixed_between(col, i, j, fixed):
                    continue
                before = crossings(columns, segments)
                col[i], col[j] = col[j], col[i]
                if crossings(columns, segments) < before:
                    improved = True
                else:
                    col[i], col[j] = col[j], col[i]


def _fixed_between(col, i, j, fixed) -> bool:
    """Moving a fixed key past another fixed key would break their order."""
    moving = [k for k in (col[i], col[j]) if k in fixed]
    return bool(moving) and any(k in fixed for k in col[i + 1:j])


def _place(columns, segments, waypoints) -> dict[str, float]:
    """Vertical positions: least squares over the edges under the order and spacing of each
    layer, solved one layer at a time (isotonic regression), sweeping back and forth."""
    offsets = []
    for col in columns:
        offset, total = [], 0.0
        for r, key in enumerate(col):
            total += _half(col[r - 1], waypoints) + _half(key, waypoints) if r else 0.0
            offset.append(total)
        offsets.append(offset)
    y = {key: o - off[-1] / 2 for col, off in zip(columns, offsets) for key, o in zip(col, off)}
    weighted: dict[str, list[tuple[str, float]]] = {key: [] for key in y}
    for a, b in segments:
        w = 1.0 + (a in waypoints) + (b in waypoints) + 5.0 * (a in waypoints and b in waypoints)
        weighted[a].append((b, w))
        weighted[b].append((a, w))
    order = list(range(len(columns))) + list(range(len(columns) - 2, 0, -1))
    for _ in range(_PLACEMENT_ROUNDS):
        for x in order:
            _place_layer(columns[x], offsets[x], y, weighted)
    return y


def _level_chains(columns, routes, y, waypoints) -> None:
    """Put a long edge's waypoints at one height where the layers leave room, so the edge runs
    level through the columns it passes, with one slope at each end instead of a stair, and
    between the heights of its ends where there is room, so it does not overshoot them. Where no
    one height fits, each maximal run of waypoints that fits gets one."""
    layer = {key: x for x, col in enumerate(columns) for key in col}

    def room(w):
        col = columns[layer[w]]
        r = col.index(w)
        low = y[col[r - 1]] + _half(col[r - 1], waypoints) + WAYPOINT_HALF if r else -math.inf
        high = (y[col[r + 1]] - _half(col[r + 1], waypoints) - WAYPOINT_HALF
                if r + 1 < len(col) else math.inf)
        return low, high

    for (source, target), chain in routes.items():
        path, start = [source] + chain + [target], 1
        while start < len(path) - 1:
            low, high = room(path[start])
            end = start + 1
            while end < len(path) - 1 and max(low, room(path[end])[0]) <= min(
                    high, room(path[end])[1]):
                low, high = max(low, room(path[end])[0]), min(high, room(path[end])[1])
                end += 1
            run = path[start:end]
            ends = sorted((y[path[start - 1]], y[path[end]]))   # no overshoot past either end
            level = min(max(sum(y[k] for k in run) / len(run), ends[0]), ends[1])
            y.update((k, min(max(level, low), high)) for k in run)
            start = end


def _half(key, waypoints) -> float:
    return WAYPOINT_HALF if key in waypoints else BOX_HALF


def _place_layer(col, offset, y, weighted) -> None:
    targets, weights = [], []
    for key, off in zip(col, offset):
        total = sum(w for _, w in weighted[key])
        pulled = sum(w * y[n] for n, w in weighted[key])
        anchor = 1e-3          # a faint pull to 0 pins the free vertical shift
        targets.append(pulled / (total + anchor) - off)
        weights.append(total + anchor)
    for key, off, z in zip(col, offset, _isotonic(targets, weights)):
        y[key] = z + off


def _isotonic(values: list[float], weights: list[float]) -> list[float]:
    """The non-decreasing sequence closest to ``values`` in weighted least squares (pool
    adjacent violators)."""
    blocks: list[list[float]] = []      # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [mean for mean, _, count in blocks for _ in range(count)]
