"""Genotypes: what a candidate cell is, as immutable, validated, JSON-able data.

A genotype describes two cells (NASNet's normal and reduction cell). A cell has B blocks; block
``i`` (0-based) reads two hidden states, applies one op to each, and combines the two results.
Hidden states are numbered as in the NASNet/AmoebaNet papers and DARTS's ``genotypes.py``:

    0        the output of the cell before the previous one (h[i-2])
    1        the output of the previous cell (h[i-1])
    2..B+1   the outputs of the blocks, in order (block i writes hidden state i + 2)

so block ``i`` may read hidden states ``0..i+1`` only. The cell's output concatenates the
"loose ends": the block outputs that no block reads (``CellSpec.concat``).

This module builds no models and imports neither keras nor tensorflow (nasbench's ModelSpec keeps
the same rule): a genotype is data that a searcher proposes, a run records and ``cells`` builds.

Validation happens at construction and raises :class:`GenotypeError` (a ``ValueError``) whose
message starts with the field's path (``normal[2].inputs[1]: ...``), then names the bad value and
what is allowed. Whether the op names exist is a question for a space (``SearchSpace.validate``)
or for ``cells`` (which owns the op registry), not for the data type.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from numbers import Integral
from typing import Any

COMBINES = ("add", "concat")
"""How a block merges its two branches: elementwise sum, or channel concatenation (NASNet)."""

_BLOCK_KEYS = ("inputs", "ops", "combine")
_GENOTYPE_KEYS = ("space", "normal", "reduction")


class GenotypeError(ValueError):
    """A genotype field is invalid. ``field`` is its path, ``problem`` the rest of the message."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def within(self, prefix: str) -> GenotypeError:
        """The same error, seen from the object that holds the field (``prefix`` + path)."""
        if not self.field:
            return GenotypeError(prefix, self.problem)
        joiner = "" if self.field.startswith("[") else "."
        return GenotypeError(f"{prefix}{joiner}{self.field}", self.problem)


def _hidden_state_names(block_index: int) -> str:
    """What block ``block_index`` may read, said for an error message."""
    last = block_index + 1
    earlier = "" if last < 2 else (f", 2..{last} = earlier blocks" if last > 2 else ", 2 = block 0")
    return f"0..{last} (0 = cell before previous, 1 = previous cell{earlier})"


def _as_pair(value: Any, field: str, what: str) -> tuple:
    """A list or tuple of exactly two items; anything else names the field and the arity."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise GenotypeError(field, f"expected a list of 2 {what}, got {value!r}")
    if len(value) != 2:
        raise GenotypeError(field, f"expected exactly 2 {what} (one per branch), "
                                   f"got {len(value)}: {list(value)!r}")
    return tuple(value)


def _check_block(inputs: Any, ops: Any, combine: Any) -> tuple[tuple, tuple, str]:
    """Validate one block's fields and return them normalized: ints, tuples, branches sorted.

    Branches are sorted as (input, op) pairs so that a block and its mirror image (the two
    branches swapped) are the same value: equal, equally hashed, equally encoded.
    """
    inputs = _as_pair(inputs, "inputs", "input indices")
    for k, index in enumerate(inputs):
        if isinstance(index, bool) or not isinstance(index, Integral) or index < 0:
            raise GenotypeError(f"inputs[{k}]", f"expected a hidden-state index (an int >= 0), "
                                                f"got {index!r}")
    ops = _as_pair(ops, "ops", "op names")
    for k, op in enumerate(ops):
        if not isinstance(op, str) or not op.strip():
            raise GenotypeError(f"ops[{k}]", f"expected a non-empty op name such as "
                                             f"'sep_conv_3x3', got {op!r}")
    if combine not in COMBINES:
        raise GenotypeError("combine", f"unknown combine {combine!r}; allowed: "
                                       f"{', '.join(map(repr, COMBINES))}")
    (in_a, op_a), (in_b, op_b) = sorted(zip((int(i) for i in inputs), ops))
    return (in_a, in_b), (op_a, op_b), combine


def _check_cell(blocks: Any) -> tuple[Block, ...]:
    """Validate a cell's block list: at least one Block, and no input that points forward.

    Errors carry paths relative to the list (``[2].inputs[1]``, or ``""`` for the list itself).
    """
    if isinstance(blocks, (str, bytes, dict)) or not isinstance(blocks, (list, tuple)):
        raise GenotypeError("", f"expected a list of blocks, got {blocks!r}")
    if not blocks:
        raise GenotypeError("", "a cell needs at least 1 block, got 0")
    for i, block in enumerate(blocks):
        if not isinstance(block, Block):
            raise GenotypeError(f"[{i}]", f"expected a Block, got {type(block).__name__} "
                                          f"{block!r} (CellSpec.from_dict reads JSON-like data)")
        for k, index in enumerate(block.inputs):
            if index > i + 1:
                raise GenotypeError(
                    f"[{i}].inputs[{k}]",
                    f"hidden state {index} points forward or out of range; block {i} "
                    f"may read {_hidden_state_names(i)}")
    return tuple(blocks)


def _expect_dict(d: Any, keys: tuple[str, ...], what: str, field: str | None = None) -> dict:
    """``d`` as a dict with only known keys, all present (errors name the missing/unknown key)."""
    where = what if field is None else field
    if not isinstance(d, dict):
        raise GenotypeError(where, f"expected a JSON object with keys {', '.join(keys)}, "
                                   f"got {type(d).__name__} {d!r}")
    unknown = sorted(set(d) - set(keys), key=str)
    if unknown:
        raise GenotypeError(where, f"unknown key(s) {', '.join(map(repr, unknown))} in {what}; "
                                   f"allowed: {', '.join(keys)}")
    return d


def _block_from_dict(d: Any) -> Block:
    """A Block from ``{"inputs": [..], "ops": [..], "combine": ..}``; errors have relative paths."""
    d = _expect_dict(d, _BLOCK_KEYS, "block", field="")
    for key in ("inputs", "ops"):
        if key not in d:
            raise GenotypeError(key, "missing; a block needs inputs (2 ints) and ops (2 names)")
    return Block(*_check_block(d["inputs"], d["ops"], d.get("combine", "add")))


def _cell_from_list(items: Any) -> CellSpec:
    """A CellSpec from a list of block dicts; errors have paths relative to it (``[2].ops``)."""
    if isinstance(items, (str, bytes, dict)) or not isinstance(items, (list, tuple)):
        raise GenotypeError("", f"expected a list of blocks, got {type(items).__name__} {items!r}")
    blocks = []
    for i, item in enumerate(items):
        try:
            blocks.append(_block_from_dict(item))
        except GenotypeError as e:
            raise e.within(f"[{i}]") from None
    return CellSpec(_check_cell(blocks))  # checked first so that errors keep the list's path


@dataclass(frozen=True)
class Block:
    """One block: two ``(input, op)`` branches, combined.

    ``inputs[k]`` is the hidden state branch ``k`` reads, ``ops[k]`` the op it applies. The
    branches are stored sorted by ``(input, op)``: the order in which they are given does not
    matter, and ``Block((1, 0), ("a", "b")) == Block((0, 1), ("b", "a"))``.
    """

    inputs: tuple[int, int]
    ops: tuple[str, str]
    combine: str = "add"

    def __post_init__(self):
        try:
            inputs, ops, combine = _check_block(self.inputs, self.ops, self.combine)
        except GenotypeError as e:
            raise e.within("Block") from None
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "combine", combine)

    def to_dict(self) -> dict:
        return {"inputs": list(self.inputs), "ops": list(self.ops), "combine": self.combine}

    @classmethod
    def from_dict(cls, d: dict) -> Block:
        """Inverse of ``to_dict``; ``combine`` may be left out (default ``"add"``)."""
        try:
            return _block_from_dict(d)
        except GenotypeError as e:
            raise e.within("Block") from None

    def describe(self, output: int | None = None) -> str:
        """``"sep_conv_3x3(1) + identity(0)"``, prefixed by ``"<output> = "`` when given."""
        branches = [f"{op}({index})" for index, op in zip(self.inputs, self.ops)]
        body = " + ".join(branches) if self.combine == "add" else f"concat({', '.join(branches)})"
        return body if output is None else f"{output} = {body}"

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class CellSpec:
    """A cell: its blocks in order. Block ``i`` writes hidden state ``i + 2``."""

    blocks: tuple[Block, ...]

    def __post_init__(self):
        try:
            blocks = _check_cell(self.blocks)
        except GenotypeError as e:
            raise e.within("CellSpec.blocks") from None
        object.__setattr__(self, "blocks", blocks)

    @property
    def concat(self) -> tuple[int, ...]:
        """The loose ends: block outputs (``2..B+1``) that no block reads, in order.

        The cell's output concatenates them, as NASNet and AmoebaNet do. The last block is
        always a loose end, so this is never empty. Cell inputs 0 and 1 are never included.
        """
        used = {index for block in self.blocks for index in block.inputs}
        return tuple(h for h in range(2, len(self.blocks) + 2) if h not in used)

    def to_dict(self) -> dict:
        return {"blocks": [block.to_dict() for block in self.blocks]}

    @classmethod
    def from_dict(cls, d: dict | list) -> CellSpec:
        """Inverse of ``to_dict``. Also takes a bare list of block dicts, the form a cell has
        inside a genotype's JSON (``genotype.to_dict()["normal"]``)."""
        items = d
        if isinstance(d, dict):
            items = _expect_dict(d, ("blocks",), "cell").get("blocks")
            if items is None:
                raise GenotypeError("blocks", "missing; a cell is {\"blocks\": [block, ...]}")
        try:
            return _cell_from_list(items)
        except GenotypeError as e:
            raise e.within("blocks") from None

    def describe(self) -> str:
        """One line per block, ``"2 = sep_conv_3x3(1) + identity(0)"``, then the output."""
        lines = [block.describe(i + 2) for i, block in enumerate(self.blocks)]
        lines.append(f"output = concat({', '.join(map(str, self.concat))})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class Genotype:
    """A candidate architecture: a normal cell, a reduction cell, and the space it comes from.

    ``space`` names a registered ``SearchSpace`` (``search_space.get_space(g.space)``); it is a
    label, checked against the registry by ``SearchSpace.validate`` and ``load_genotype``, not
    here, so that a genotype stays plain data. Instances are immutable and hashable; ``hash()``
    gives a stable sha256 for de-duplication across processes and runs.
    """

    normal: CellSpec
    reduction: CellSpec
    space: str = "nasnet"

    def __post_init__(self):
        for field in ("normal", "reduction"):
            value = getattr(self, field)
            if not isinstance(value, CellSpec):
                raise GenotypeError(f"Genotype.{field}",
                                    f"expected a CellSpec, got {type(value).__name__} "
                                    f"(use Genotype.from_dict for JSON data)")
        if not isinstance(self.space, str) or not self.space.strip():
            raise GenotypeError("Genotype.space", f"expected a space name such as 'nasnet', "
                                                  f"got {self.space!r}")

    def to_dict(self) -> dict:
        """``{"space": ..., "normal": [block, ...], "reduction": [block, ...]}``."""
        return {"space": self.space,
                "normal": [b.to_dict() for b in self.normal.blocks],
                "reduction": [b.to_dict() for b in self.reduction.blocks]}

    @classmethod
    def from_dict(cls, d: dict) -> Genotype:
        """Inverse of ``to_dict``. Errors name the field by its path, e.g. ``normal[2].ops[0]``.

        The one reader of genotype JSON: a dict with a ``"nodes"`` key is an edge genotype
        (``search_space.edge_genotype``, NAS-Bench-201's kind) and comes back as one, so run
        records, files and Ray trial configs hold either kind."""
        if isinstance(d, dict) and "nodes" in d:
            from search_space.edge_genotype import EdgeGenotype

            return EdgeGenotype.from_dict(d)
        d = _expect_dict(d, _GENOTYPE_KEYS, "genotype")
        missing = [key for key in _GENOTYPE_KEYS if key not in d]
        if missing:
            raise GenotypeError(missing[0],
                                f"missing; a genotype needs {', '.join(_GENOTYPE_KEYS)}")
        cells = {}
        for field in ("normal", "reduction"):
            try:
                cells[field] = _cell_from_list(d[field])
            except GenotypeError as e:
                raise e.within(field) from None
        try:
            return cls(space=d["space"], **cells)
        except GenotypeError as e:
            raise GenotypeError(e.field.removeprefix("Genotype."), e.problem) from None

    def to_json(self, indent: int | None = 2) -> str:
        """JSON a person can read: with ``indent``, one line per block; ``None``: one line.

        ``Genotype.from_json(g.to_json()) == g`` for every genotype, and the text is canonical:
        equal genotypes give identical JSON.
        """
        d = self.to_dict()
        if indent is None:
            return json.dumps(d)
        pad = " " * indent

        def cell(blocks):
            rows = [pad * 2 + json.dumps(b) for b in blocks]
            return "[\n" + ",\n".join(rows) + "\n" + pad + "]"

        return ("{\n"
                f"{pad}\"space\": {json.dumps(self.space)},\n"
                f"{pad}\"normal\": {cell(d['normal'])},\n"
                f"{pad}\"reduction\": {cell(d['reduction'])}\n"
                "}")

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        """Parse ``to_json``'s output (any valid JSON of that shape). Never evaluates code."""
        if isinstance(text, (bytes, bytearray)):
            text = text.decode("utf-8")
        if not isinstance(text, str):
            raise GenotypeError("json", f"expected a JSON string, got {type(text).__name__}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise GenotypeError("json", f"malformed JSON at line {e.lineno} column {e.colno}: "
                                        f"{e.msg}") from None
        return cls.from_dict(data)

    def hash(self) -> str:
        """sha256 hex digest of the canonical JSON (space included, branch order canonical).

        Equal genotypes have equal digests. Canonical means up to branch order only: two cells
        whose blocks are numbered differently but compute the same graph hash differently.
        """
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """Both cells, one line per block; hidden states 0/1 are the two cell inputs."""
        def indented(cell: CellSpec) -> str:
            return "\n".join("  " + line for line in cell.describe().splitlines())

        return (f"genotype (space {self.space!r}; 0 = cell before previous, 1 = previous cell)\n"
                f"normal cell:\n{indented(self.normal)}\n"
                f"reduction cell:\n{indented(self.reduction)}")

    def __str__(self) -> str:
        return self.describe()
