"""Edge genotypes: a cell whose ops sit on the edges of a small DAG (NAS-Bench-201's kind).

NAS-Bench-201 (Dong & Yang, ICLR 2020), like NAS-Bench-1Shot1 and DARTS's supernet, puts the
choice on edges rather than on two-branch blocks: node 0 is the cell's input, every later node
``j`` sums ``op(node i)`` over all ``i < j``, and the last node is the cell's output. A genotype
is the op of every edge, nothing else: no inputs to choose and no concatenation.

``EdgeGenotype.nodes[j - 1][i]`` is the op on the edge ``i -> j``; its JSON is
``{"space": "nb201", "nodes": [["nor_conv_3x3"], ["nor_conv_3x3", "none"], [...]]}``, one list
per node listing what it applies to nodes ``0, 1, ...``: NAS-Bench-201's own layout
(``|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|...|``, which ``EdgeSpace.from_arch_str`` reads).

Like ``Genotype`` it is immutable, validated at construction with errors that name the field,
hashed canonically, and builds no models; ``Genotype.from_dict`` reads both kinds, so run records
and files hold either without the reader knowing which.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from search_space.genotype import GenotypeError

_KEYS = ("space", "nodes")


def _check_nodes(nodes: Any) -> tuple[tuple[str, ...], ...]:
    """Node ``j`` (``nodes[j - 1]``) lists exactly ``j`` op names; errors give the path."""
    if isinstance(nodes, (str, bytes, dict)) or not isinstance(nodes, (list, tuple)):
        raise GenotypeError("nodes", f"expected a list with one list of op names per node "
                                     f"after the input, got {nodes!r}")
    if not nodes:
        raise GenotypeError("nodes", "a cell needs at least one node after its input, got 0")
    checked = []
    for j, incoming in enumerate(nodes, start=1):
        field = f"nodes[{j - 1}]"
        if isinstance(incoming, (str, bytes, dict)) or not isinstance(incoming, (list, tuple)):
            raise GenotypeError(field, f"expected a list of {j} op name(s), one per edge "
                                       f"{', '.join(f'{i}->{j}' for i in range(j))}; "
                                       f"got {incoming!r}")
        if len(incoming) != j:
            raise GenotypeError(field, f"node {j} reads nodes 0..{j - 1}, so it takes exactly "
                                       f"{j} op name(s); got {len(incoming)}: {list(incoming)!r}")
        for i, op in enumerate(incoming):
            if not isinstance(op, str) or not op.strip():
                raise GenotypeError(f"{field}[{i}]", f"expected an op name such as "
                                                     f"'nor_conv_3x3' for edge {i}->{j}, got {op!r}")
        checked.append(tuple(incoming))
    return tuple(checked)


@dataclass(frozen=True)
class EdgeGenotype:
    """A cell of ops on DAG edges; ``nodes[j - 1][i]`` is the op of edge ``i -> j``.

    ``space`` names a registered space (``search_space.get_space``), checked by the space's
    ``validate``, not here. Instances are immutable and hashable; ``hash()`` is a stable sha256.
    """

    nodes: tuple[tuple[str, ...], ...]
    space: str = "nb201"

    def __post_init__(self):
        try:
            nodes = _check_nodes(self.nodes)
        except GenotypeError as e:
            raise e.within("EdgeGenotype") if e.field != "nodes" else \
                GenotypeError("EdgeGenotype.nodes", e.problem) from None
        object.__setattr__(self, "nodes", nodes)
        if not isinstance(self.space, str) or not self.space.strip():
            raise GenotypeError("EdgeGenotype.space", f"expected a space name such as 'nb201', "
                                                      f"got {self.space!r}")

    @property
    def num_nodes(self) -> int:
        """Nodes including the input (node 0): 4 in NAS-Bench-201."""
        return len(self.nodes) + 1

    def edges(self) -> list[tuple[int, int, str]]:
        """``(source, target, op)`` of every edge, by target then source (NAS-Bench-201's order,
        also the order of ``EdgeSpace``'s decisions)."""
        return [(i, j, op) for j, incoming in enumerate(self.nodes, start=1)
                for i, op in enumerate(incoming)]

    def to_dict(self) -> dict:
        return {"space": self.space, "nodes": [list(incoming) for incoming in self.nodes]}

    @classmethod
    def from_dict(cls, d: Any) -> EdgeGenotype:
        """Inverse of ``to_dict``; unknown or missing keys are named."""
        if not isinstance(d, dict):
            raise GenotypeError("genotype", f"expected a JSON object with keys "
                                            f"{', '.join(_KEYS)}, got {type(d).__name__} {d!r}")
        unknown = sorted(set(d) - set(_KEYS), key=str)
        if unknown:
            raise GenotypeError("genotype", f"unknown key(s) {', '.join(map(repr, unknown))} in "
                                            f"an edge genotype; allowed: {', '.join(_KEYS)}")
        for key in _KEYS:
            if key not in d:
                raise GenotypeError(key, f"missing; an edge genotype needs {', '.join(_KEYS)}")
        try:
            return cls(nodes=_check_nodes(d["nodes"]), space=d["space"])
        except GenotypeError as e:
            raise GenotypeError(e.field.removeprefix("EdgeGenotype."), e.problem) from None

    def to_json(self, indent: int | None = 2) -> str:
        """Canonical JSON (equal genotypes give identical text); with ``indent``, a node a line."""
        if indent is None:
            return json.dumps(self.to_dict())
        pad = " " * indent
        rows = ",\n".join(pad * 2 + json.dumps(list(incoming)) for incoming in self.nodes)
        return (f"{{\n{pad}\"space\": {json.dumps(self.space)},\n"
                f"{pad}\"nodes\": [\n{rows}\n{pad}]\n}}")

    @classmethod
    def from_json(cls, text: str) -> EdgeGenotype:
        from search_space.genotype import Genotype

        genotype = Genotype.from_json(text)
        if not isinstance(genotype, cls):
            raise GenotypeError("json", "expected an edge genotype (a 'nodes' key), got a "
                                        "two-cell genotype")
        return genotype

    def hash(self) -> str:
        """sha256 hex digest of the canonical JSON (the space's name included)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """One line per node, ``"node 2 = nor_conv_3x3(0) + none(1)"``; the last is the output."""
        lines = [f"genotype (space {self.space!r}; node 0 = the cell's input, "
                 f"node {self.num_nodes - 1} = its output)"]
        for j, incoming in enumerate(self.nodes, start=1):
            lines.append(f"node {j} = " + " + ".join(f"{op}({i})" for i, op in enumerate(incoming)))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()
