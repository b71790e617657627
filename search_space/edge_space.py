"""Edge spaces: an op on every edge of a small DAG (NAS-Bench-201's ``nb201``).

The same protocol as ``SearchSpace`` (the searchers, the Ray Tune and keras-tuner adapters and
the run records use nothing else): a genotype is a fixed-length sequence of integer decisions,
here one per edge in NAS-Bench-201's order (``1<-0``, ``2<-0``, ``2<-1``, ``3<-0``, ``3<-1``,
``3<-2``), each an index into ``ops``; ``sample`` draws them uniformly; ``mutate`` changes one
edge's op (the mutation of NAS-Bench-201's regularized-evolution baseline); ``encode``/``decode``
convert, ``validate`` checks. ``to_arch_str``/``from_arch_str`` convert to and from
NAS-Bench-201's cell string, the key of its table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from numbers import Integral
from typing import Sequence

import numpy as np

from search_space.edge_genotype import EdgeGenotype
from search_space.genotype import GenotypeError

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""NAS-Bench-201's five ops, under its own names (``cells.OPS`` registers each)."""
ZERO_OP = "none"
"""The op whose output is zeros (``cells.nb201.Zero``): an edge that is no edge."""

_ARCH_EDGE = re.compile(r"^(?P<op>[^~|+]+)~(?P<source>[^~|+]*)$")


@dataclass(frozen=True)
class EdgeSpace:
    """A space of edge genotypes: ``ops`` on each edge of a DAG of ``num_nodes`` nodes."""

    name: str
    ops: tuple[str, ...]
    num_nodes: int = 4
    # ops that map an all-zero input to zeros exactly (no weights, no learned bias): reading a
    # node that is all zeros, they are no edge either (see ``canonical``)
    zero_preserving: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"EdgeSpace.name: expected a non-empty name, got {self.name!r}")
        ops = tuple(self.ops) if isinstance(self.ops, (list, tuple)) else None
        if not ops or not all(isinstance(op, str) and op.strip() for op in ops):
            raise ValueError(f"EdgeSpace.ops: expected a non-empty list of op names, "
                             f"got {self.ops!r}")
        repeated = sorted({op for op in ops if ops.count(op) > 1})
        if repeated:
            raise ValueError(f"EdgeSpace.ops: {', '.join(map(repr, repeated))} listed more than "
                             f"once; each name may appear once")
        object.__setattr__(self, "ops", ops)
        if isinstance(self.num_nodes, bool) or not isinstance(self.num_nodes, Integral) \
                or self.num_nodes < 2:
            raise ValueError(f"EdgeSpace.num_nodes: expected an int >= 2 (the input and at "
                             f"least one more node), got {self.num_nodes!r}")
        object.__setattr__(self, "num_nodes", int(self.num_nodes))
        unknown = [op for op in self.zero_preserving if op not in ops]
        if isinstance(self.zero_preserving, str) or unknown:
            raise ValueError(f"EdgeSpace.zero_preserving: expected a list of ops of the space, "
                             f"got {self.zero_preserving!r}")
        object.__setattr__(self, "zero_preserving", tuple(self.zero_preserving))

    # -- the decision sequence ---------------------------------------------------------------

    def _edges(self) -> list[tuple[int, int]]:
        return [(i, j) for j in range(1, self.num_nodes) for i in range(j)]

    def decision_sizes(self) -> list[int]:
        """One decision per edge, each over ``ops``."""
        return [len(self.ops)] * len(self._edges())

    def decision_labels(self) -> list[str]:
        """``"edge[0->1]"``, ``"edge[0->2]"``, ...: what each decision decides, in order."""
        return [f"edge[{i}->{j}]" for i, j in self._edges()]

    def size(self, canonical: bool = False) -> int:
        """The number of genotypes: ``len(ops) ** edges`` (15,625 for ``nb201``). Every encoding
        is a distinct genotype, so ``canonical`` changes nothing (it is there for the protocol;
        ``canonical()`` below counts networks, not genotypes)."""
        return len(self.ops) ** len(self._edges())

    def canonical(self, genotype: EdgeGenotype) -> EdgeGenotype:
        """``genotype`` with every edge that cannot change the cell's output set to ``none``: an
        edge into a node the output does not read, and a ``zero_preserving`` op reading a node
        that is all zeros (every edge into it ``none``). Genotypes with one canonical form build
        the same function, so a searcher scores only one of them (``searchers.base``): in
        ``nb201`` 15,625 genotypes are 10,405 networks. Without a ``none`` op it is ``genotype``.
        """
        self.validate(genotype)
        if ZERO_OP not in self.ops:
            return genotype
        ops = {(i, j): op for i, j, op in genotype.edges()}
        zero: set[int] = set()
        for j in range(1, self.num_nodes):
            for i in range(j):
                if i in zero and ops[i, j] in self.zero_preserving:
                    ops[i, j] = ZERO_OP
            if all(ops[i, j] == ZERO_OP for i in range(j)):
                zero.add(j)
        read = {self.num_nodes - 1}     # the nodes the output reads, directly or through others
        for i in range(self.num_nodes - 2, -1, -1):
            if any(ops[i, j] != ZERO_OP and j in read for j in range(i + 1, self.num_nodes)):
                read.add(i)
        nodes = tuple(tuple(ops[i, j] if j in read else ZERO_OP for i in range(j))
                      for j in range(1, self.num_nodes))
        return EdgeGenotype(nodes=nodes, space=self.name)

    def encode(self, genotype: EdgeGenotype) -> list[int]:
        """The op index of every edge, in order. Validates first."""
        self.validate(genotype)
        return [self.ops.index(op) for _, _, op in genotype.edges()]

    def decode(self, decisions: Sequence[int]) -> EdgeGenotype:
        """The genotype a decision sequence describes, labelled with this space's name; a wrong
        length or an out-of-range value is a ``ValueError`` naming the decision."""
        labels = self.decision_labels()
        if isinstance(decisions, (str, bytes)) or not hasattr(decisions, "__len__"):
            raise ValueError(f"decisions: expected a sequence of {len(labels)} ints, "
                             f"got {type(decisions).__name__}")
        values = np.asarray(decisions).tolist() if isinstance(decisions, np.ndarray) \
            else list(decisions)
        if len(values) != len(labels):
            raise ValueError(f"decisions: space {self.name!r} takes {len(labels)} decisions "
                             f"(one per edge), got {len(values)}")
        for k, (value, label) in enumerate(zip(values, labels)):
            if isinstance(value, bool) or not isinstance(value, Integral) \
                    or not 0 <= value < len(self.ops):
                raise ValueError(f"decisions[{k}] ({label}): got {value!r}; allowed: an int in "
                                 f"0..{len(self.ops) - 1}")
        it = iter(int(v) for v in values)
        nodes = tuple(tuple(self.ops[next(it)] for _ in range(j))
                      for j in range(1, self.num_nodes))
        return EdgeGenotype(nodes=nodes, space=self.name)

    # -- sampling and mutation ---------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> EdgeGenotype:
        """A genotype drawn uniformly: every edge's op uniform and independent."""
        from search_space.spaces import _check_rng

        return self.decode(_check_rng(rng).integers(0, len(self.ops),
                                                    size=len(self._edges())).tolist())

    def mutate(self, genotype: EdgeGenotype, rng: np.random.Generator) -> EdgeGenotype:
        """A child with one edge's op replaced by a different op (chosen uniformly), so it never
        equals its parent; labelled with this space's name."""
        from search_space.spaces import _check_rng, _pick_other

        decisions = self.encode(genotype)
        _check_rng(rng)
        if len(self.ops) < 2:
            raise ValueError(f"space {self.name!r} has one op: no genotype has a neighbour")
        edge = int(rng.integers(len(decisions)))
        decisions[edge] = _pick_other(range(len(self.ops)), decisions[edge], rng)
        return self.decode(decisions)

    # -- validation --------------------------------------------------------------------------

    def validate(self, genotype: EdgeGenotype) -> EdgeGenotype:
        """Check that ``genotype`` is an edge genotype of this many nodes over these ops;
        ``GenotypeError`` (a ``ValueError``) naming the field otherwise. Returns it."""
        if not isinstance(genotype, EdgeGenotype):
            raise ValueError(f"genotype: space {self.name!r} takes an edge genotype (one op per "
                             f"edge, as {{\"nodes\": ...}}), got {type(genotype).__name__}")
        if genotype.num_nodes != self.num_nodes:
            raise GenotypeError("nodes", f"{genotype.num_nodes} nodes; space {self.name!r} has "
                                         f"{self.num_nodes} (node 0 the input)")
        for i, j, op in genotype.edges():
            if op not in self.ops:
                raise GenotypeError(f"nodes[{j - 1}][{i}]",
                                    f"{op!r} (edge {i}->{j}) is not an op of space "
                                    f"{self.name!r}; allowed: {', '.join(self.ops)}")
        return genotype

    # -- NAS-Bench-201's cell string ---------------------------------------------------------

    def to_arch_str(self, genotype: EdgeGenotype) -> str:
        """NAS-Bench-201's string, ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: one ``|...|`` group
        per node, ``op~i`` the op applied to node ``i``."""
        self.validate(genotype)
        return "+".join("|" + "|".join(f"{op}~{i}" for i, op in enumerate(incoming)) + "|"
                        for incoming in genotype.nodes)

    def from_arch_str(self, text: str) -> EdgeGenotype:
        """The genotype of a NAS-Bench-201 string; a malformed one is a ``ValueError`` that
        names the bad part (its node, the text of the edge, and what is allowed)."""
        if not isinstance(text, str):
            raise ValueError(f"arch string: expected text such as "
                             f"'|nor_conv_3x3~0|+|...|', got {type(text).__name__}")
        stripped = text.strip()
        groups = stripped.split("+")
        if len(groups) != self.num_nodes - 1:
            raise ValueError(f"arch string {stripped!r}: {len(groups)} node group(s) joined by "
                             f"'+'; space {self.name!r} has {self.num_nodes - 1} "
                             f"(nodes 1..{self.num_nodes - 1})")
        nodes = []
        for j, group in enumerate(groups, start=1):
            where = f"arch string, node {j} ({group!r})"
            if len(group) < 2 or not group.startswith("|") or not group.endswith("|"):
                raise ValueError(f"{where}: a node is written |op~i|op~i|...| with a '|' at "
                                 f"both ends")
            incoming: dict[int, str] = {}
            for part in group[1:-1].split("|"):
                match = _ARCH_EDGE.match(part)
                if match is None:
                    raise ValueError(f"{where}: {part!r} is not op~i (an op name, '~', the "
                                     f"index of the node it reads)")
                op, source = match["op"], match["source"]
                if op not in self.ops:
                    raise ValueError(f"{where}: unknown op {op!r}; allowed: "
                                     f"{', '.join(self.ops)}")
                if not source.isdigit() or int(source) >= j:
                    raise ValueError(f"{where}: {part!r} reads node {source!r}; node {j} reads "
                                     f"nodes 0..{j - 1}")
                if int(source) in incoming:
                    raise ValueError(f"{where}: node {source} is read twice; each of nodes "
                                     f"0..{j - 1} once")
                incoming[int(source)] = op
            if len(incoming) != j:
                missing = [str(i) for i in range(j) if i not in incoming]
                raise ValueError(f"{where}: no edge from node(s) {', '.join(missing)}; node {j} "
                                 f"reads each of nodes 0..{j - 1} once")
            nodes.append(tuple(incoming[i] for i in range(j)))
        return EdgeGenotype(nodes=tuple(nodes), space=self.name)
