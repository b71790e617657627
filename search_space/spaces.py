"""Search spaces as data: a name, the candidate ops, the number of blocks and the combines.

A space is a frozen dataclass plus a registry, not a subclass per paper, so a new space is one
line: ``register_space(SearchSpace("tiny", ops=("identity", "conv_3x3"), num_blocks=2))``.
Op names are not checked here (this package must not import keras); ``cells.make_op`` raises a
``ValueError`` listing the known ops when a network with an unknown op is built.

Every genotype of a space is a fixed-length sequence of integer decisions, in this order: for the
normal cell, then the reduction cell, for each block ``i``: ``input_a`` (``i + 2`` choices),
``input_b`` (``i + 2``), ``op_a`` (``len(ops)``), ``op_b`` (``len(ops)``) and, only when the space
has more than one combine, ``combine``. That sequence is what an RL controller emits
(``decision_sizes``, ``encode``, ``decode``) and what ``sample`` draws uniformly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral
from typing import Sequence

import numpy as np

from search_space.edge_space import NB201_OPS, EdgeSpace
from search_space.genotype import COMBINES, Block, CellSpec, Genotype, GenotypeError

CELLS = ("normal", "reduction")

NASNET_OPS = (
    "identity", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3", "max_pool_3x3",
    "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3", "sep_conv_5x5",
    "sep_conv_7x7",
)
"""The 13 ops of NASNet's search space (Zoph et al. 2018, section 3)."""

AMOEBANET_OPS = (
    "identity", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "avg_pool_3x3", "max_pool_3x3",
    "dil_sep_conv_3x3", "conv_1x7_7x1",
)
"""The 8 ops of AmoebaNet's search space (Real et al. 2019, section 3)."""

ARTICLE_BLOCKS = (
    "bottleneck", "inception", "residual", "resnext", "dense_block", "se", "inverted_residual",
)
"""The article's blocks (``cells.BLOCKS``), offered as candidate ops by the ``article`` space."""

DARTS_OPS = (
    "identity", "sep_conv_3x3", "sep_conv_5x5", "dil_sep_conv_3x3", "avg_pool_3x3", "max_pool_3x3",
)
"""DARTS's primitives (Liu et al. 2019) under our names: ``skip_connect`` is ``identity`` and
``dil_conv_3x3`` (a dilated depthwise-separable conv, DARTS's ``DilConv``) is ``dil_sep_conv_3x3``.
Left out: ``none`` (the zero op, which DARTS never keeps in a derived cell) and ``dil_conv_5x5``
(no op of that kind in ``cells.OPS``; register one and a space to use it)."""


def _check_rng(rng) -> np.random.Generator:
    """Randomness is passed in; a seed or the global ``np.random`` state is refused on purpose."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


@dataclass(frozen=True)
class SearchSpace:
    """A cell search space: which ops a branch may apply, how many blocks a cell has, and how
    a block combines its two branches. Both cells of a genotype have ``num_blocks`` blocks."""

    name: str                                # registry key; genotypes name their space with it
    ops: tuple[str, ...]                     # candidate ops; an op decision is an index into it
    num_blocks: int = 5                      # B: blocks per cell (NASNet and AmoebaNet use 5)
    combines: tuple[str, ...] = ("add",)     # allowed block combines, a subset of ("add", "concat")

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"SearchSpace.name: expected a non-empty name, got {self.name!r}")
        for field, allowed in (("ops", None), ("combines", COMBINES)):
            value = getattr(self, field)
            if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"SearchSpace.{field}: expected a non-empty list of names, "
                                 f"got {value!r}")
            value = tuple(value)
            for item in value:
                if not isinstance(item, str) or not item.strip():
                    raise ValueError(f"SearchSpace.{field}: expected names, got {item!r}")
                if allowed is not None and item not in allowed:
                    raise ValueError(f"SearchSpace.combines: unknown combine {item!r}; allowed: "
                                     f"{', '.join(map(repr, allowed))}")
            repeated = sorted({item for item in value if value.count(item) > 1})
            if repeated:
                raise ValueError(f"SearchSpace.{field}: {', '.join(map(repr, repeated))} listed "
                                 f"more than once; each name may appear once")
            object.__setattr__(self, field, value)
        if isinstance(self.num_blocks, bool) or not isinstance(self.num_blocks, Integral) \
                or self.num_blocks < 1:
            raise ValueError(f"SearchSpace.num_blocks: expected an int >= 1, "
                             f"got {self.num_blocks!r}")
        object.__setattr__(self, "num_blocks", int(self.num_blocks))

    # -- the decision sequence ---------------------------------------------------------------

    def _block_decisions(self, i: int) -> list[tuple[str, int]]:
        """(label, number of choices) of block ``i``'s decisions, in encoding order."""
        labels = [("input_a", i + 2), ("input_b", i + 2),
                  ("op_a", len(self.ops)), ("op_b", len(self.ops))]
        if len(self.combines) > 1:
            labels.append(("combine", len(self.combines)))
        return labels

    def _decisions(self) -> list[tuple[str, int]]:
        """(path, size) of every decision, e.g. ``("reduction[1].op_a", 13)``."""
        return [(f"{cell}[{i}].{label}", size)
                for cell in CELLS for i in range(self.num_blocks)
                for label, size in self._block_decisions(i)]

    def decision_sizes(self) -> list[int]:
        """Number of choices of each decision, in order (see the module docstring)."""
        return [size for _, size in self._decisions()]

    def decision_labels(self) -> list[str]:
        """What each decision decides, in order: ``"normal[0].input_a"``, ...,
        ``"reduction[4].combine"``. The names keras-tuner's ``Choice``s and error messages use,
        so a decision has one name everywhere."""
        return [label for label, _ in self._decisions()]

    def size(self, canonical: bool = False) -> int:
        """The number of genotypes in the space, exactly (a Python int; it can be huge).

        By default this counts encodings: distinct decision sequences, ``prod(decision_sizes())``.
        Because a block's two branches are unordered, two encodings that differ only by swapping
        a block's branches decode to the same genotype; ``canonical=True`` counts distinct
        genotypes instead (per block, unordered pairs of (input, op) branches, with repetition).
        """
        if not canonical:
            return math.prod(self.decision_sizes())
        per_cell = 1
        for i in range(self.num_blocks):
            branches = (i + 2) * len(self.ops)
            per_cell *= branches * (branches + 1) // 2 * len(self.combines)
        return per_cell ** len(CELLS)

    def encode(self, genotype: Genotype) -> list[int]:
        """The genotype as decisions (what a controller emits). Validates first.

        ``decode(encode(g)) == g`` for every ``g`` of this space labelled with its name. The other
        way round, ``encode(decode(d))`` equals ``d`` up to the order of each block's branches:
        ``encode`` gives every block's branches in canonical (sorted) order.
        """
        self.validate(genotype)
        decisions = []
        for cell in (genotype.normal, genotype.reduction):
            for block in cell.blocks:
                decisions += [*block.inputs, *(self.ops.index(op) for op in block.ops)]
                if len(self.combines) > 1:
                    decisions.append(self.combines.index(block.combine))
        return decisions

    def decode(self, decisions: Sequence[int]) -> Genotype:
        """The genotype a decision sequence describes, labelled with this space's name.

        Raises ``ValueError`` naming the decision (``decisions[6] (normal[1].input_a)``) when the
        length is wrong or a value is out of its range.
        """
        layout = self._decisions()
        if isinstance(decisions, (str, bytes)) or not hasattr(decisions, "__len__"):
            raise ValueError(f"decisions: expected a sequence of {len(layout)} ints, "
                             f"got {type(decisions).__name__}")
        values = list(np.asarray(decisions).tolist()) if isinstance(decisions, np.ndarray) \
            else list(decisions)
        if len(values) != len(layout):
            raise ValueError(f"decisions: space {self.name!r} takes {len(layout)} decisions "
                             f"(2 cells x {self.num_blocks} blocks x "
                             f"{len(self._block_decisions(0))}), got {len(values)}")
        for k, (value, (path, size)) in enumerate(zip(values, layout)):
            if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= value < size:
                raise ValueError(f"decisions[{k}] ({path}): got {value!r}; allowed: an int in "
                                 f"0..{size - 1}")
        it = iter(int(v) for v in values)
        cells = {}
        for cell in CELLS:
            blocks = []
            for i in range(self.num_blocks):
                in_a, in_b, op_a, op_b = next(it), next(it), next(it), next(it)
                combine = self.combines[next(it)] if len(self.combines) > 1 else self.combines[0]
                blocks.append(Block((in_a, in_b), (self.ops[op_a], self.ops[op_b]), combine))
            cells[cell] = CellSpec(tuple(blocks))
        return Genotype(space=self.name, **cells)

    # -- sampling and mutation ---------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> Genotype:
        """A genotype drawn uniformly over encodings (every decision uniform and independent).

        Over distinct genotypes this is not quite uniform: a block whose two branches differ has
        two encodings, one with identical branches only one.
        """
        sizes = np.asarray(self.decision_sizes())
        return self.decode(_check_rng(rng).integers(0, sizes).tolist())

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """A child that differs from ``genotype`` in exactly one branch (AmoebaNet's mutations).

        Picks the normal or the reduction cell, then a mutation, uniformly:
        - hidden-state mutation: one branch of one block reads another hidden state, any other
          one the block may read (so no cycle can form);
        - op mutation: one branch's op is replaced by a different op of the space;
        - combine mutation (only in spaces with several combines, so evolution can reach them):
          one block's combine is switched.
        A change to one branch always changes the block's unordered pair of branches, so the
        child never equals the parent, not even after canonical branch ordering. The child is
        labelled with this space's name.
        """
        self.validate(genotype)
        _check_rng(rng)
        which = CELLS[int(rng.integers(len(CELLS)))]
        cell: CellSpec = getattr(genotype, which)
        kinds = ["hidden_state"] + (["op"] if len(self.ops) > 1 else []) \
            + (["combine"] if len(self.combines) > 1 else [])
        kind = kinds[int(rng.integers(len(kinds)))]
        i = int(rng.integers(self.num_blocks))
        k = int(rng.integers(2))
        block = cell.blocks[i]
        inputs, ops, combine = list(block.inputs), list(block.ops), block.combine
        if kind == "hidden_state":
            inputs[k] = _pick_other(range(i + 2), inputs[k], rng)
        elif kind == "op":
            ops[k] = _pick_other(self.ops, ops[k], rng)
        else:
            combine = _pick_other(self.combines, combine, rng)
        blocks = list(cell.blocks)
        blocks[i] = Block(tuple(inputs), tuple(ops), combine)
        cells = {"normal": genotype.normal, "reduction": genotype.reduction,
                 which: CellSpec(tuple(blocks))}
        return Genotype(space=self.name, **cells)

    # -- validation --------------------------------------------------------------------------

    def validate(self, genotype: Genotype) -> Genotype:
        """Check that ``genotype`` fits this space: block count, ops and combines.

        Raises ``GenotypeError`` (a ``ValueError``) naming the field, e.g.
        ``normal[2].ops[0]: 'conv_9x9' is not an op of space 'amoebanet'; allowed: ...``. The
        genotype's ``space`` label is not compared: a cell of a smaller space (NASNet-A in
        ``article``) fits a larger one. Returns the genotype, for chaining.
        """
        if not isinstance(genotype, Genotype):
            raise ValueError(f"genotype: expected a Genotype, got {type(genotype).__name__}")
        for which in CELLS:
            blocks = getattr(genotype, which).blocks
            if len(blocks) != self.num_blocks:
                raise GenotypeError(which, f"{len(blocks)} blocks; space {self.name!r} has "
                                           f"{self.num_blocks} blocks per cell")
            for i, block in enumerate(blocks):
                for k, op in enumerate(block.ops):
                    if op not in self.ops:
                        raise GenotypeError(f"{which}[{i}].ops[{k}]",
                                            f"{op!r} is not an op of space {self.name!r}; "
                                            f"allowed: {', '.join(self.ops)}")
                if block.combine not in self.combines:
                    raise GenotypeError(f"{which}[{i}].combine",
                                        f"{block.combine!r} is not allowed in space {self.name!r}; "
                                        f"allowed: {', '.join(self.combines)}")
        return genotype


def _pick_other(options, current, rng: np.random.Generator):
    """A uniformly chosen option other than ``current`` (the caller ensures there is one)."""
    others = [option for option in options if option != current]
    return others[int(rng.integers(len(others)))]


SPACE_TYPES = (SearchSpace, EdgeSpace)
"""The kinds of space: two-cell block spaces (NASNet's) and edge spaces (NAS-Bench-201's)."""

SPACES: dict[str, SearchSpace | EdgeSpace] = {}
"""The registry: space name -> SearchSpace. Add to it with ``register_space``."""


def register_space(space: SearchSpace, *, replace: bool = False) -> SearchSpace:
    """Register ``space`` under its name and return it.

    Registering an equal space again is a no-op (re-running a notebook cell is fine); a
    different space under a taken name needs ``replace=True``.
    """
    if not isinstance(space, SPACE_TYPES):
        raise ValueError(f"space: expected a SearchSpace or an EdgeSpace, got "
                         f"{type(space).__name__}")
    old = SPACES.get(space.name)
    if old is not None and old != space and not replace:
        raise ValueError(f"space {space.name!r} is already registered with different settings; "
                         f"pass replace=True to replace it")
    SPACES[space.name] = space
    return space


def get_space(name: str) -> SearchSpace:
    """The registered space called ``name``; an unknown name lists the known ones."""
    if not isinstance(name, str) or name not in SPACES:
        raise ValueError(f"unknown space {name!r}; known spaces: {', '.join(sorted(SPACES))} "
                         f"(add one with search_space.register_space)")
    return SPACES[name]


register_space(SearchSpace("nasnet", NASNET_OPS, num_blocks=5, combines=("add", "concat")))
register_space(SearchSpace("amoebanet", AMOEBANET_OPS, num_blocks=5))
register_space(SearchSpace("article", AMOEBANET_OPS + ARTICLE_BLOCKS, num_blocks=5))
# DARTS's cell has 4 intermediate nodes; published DARTS cells (search_space.published) live here.
register_space(SearchSpace("darts", DARTS_OPS, num_blocks=4))
# NAS-Bench-201's cell (Dong & Yang 2020): 4 nodes, an op on each of the 6 edges; its table of
# all 15,625 cells trained is the playground's ground truth (``--scorer nb201``).
register_space(EdgeSpace("nb201", NB201_OPS, num_nodes=4,
                         zero_preserving=("skip_connect", "avg_pool_3x3")))
