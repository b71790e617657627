"""search_space.genotype: validation, canonical branch order, JSON, hashing, description."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_space import PUBLISHED, SPACES, Block, CellSpec, Genotype, GenotypeError


def cell(*blocks):
    """A CellSpec from blocks given as ((input, input), (op, op)[, combine])."""
    return CellSpec(tuple(Block(*b) for b in blocks))


SMALL = Genotype(
    normal=cell(((1, 0), ("sep_conv_3x3", "identity")), ((2, 1), ("avg_pool_3x3", "conv_3x3"))),
    reduction=cell(((0, 0), ("max_pool_3x3", "max_pool_3x3")),
                   ((2, 1), ("sep_conv_5x5", "identity"), "concat")),
    space="nasnet",
)


def genotype_json(normal, reduction=None, space="nasnet"):
    """Genotype JSON text from block dicts (the reduction cell defaults to one valid block)."""
    reduction = reduction or [{"inputs": [0, 1], "ops": ["identity", "identity"]}]
    return json.dumps({"space": space, "normal": normal, "reduction": reduction})


# -- canonical branch order --------------------------------------------------------------------

def test_swapping_branches_gives_an_equal_block():
    a = Block((1, 0), ("sep_conv_3x3", "identity"))
    b = Block((0, 1), ("identity", "sep_conv_3x3"))
    assert a == b and hash(a) == hash(b)
    assert a.inputs == (0, 1) and a.ops == ("identity", "sep_conv_3x3")


def test_swapping_branches_gives_an_equal_genotype_with_the_same_hash_and_json():
    swapped = Genotype(
        normal=cell(((0, 1), ("identity", "sep_conv_3x3")), ((1, 2), ("conv_3x3", "avg_pool_3x3"))),
        reduction=cell(((0, 0), ("max_pool_3x3", "max_pool_3x3")),
                       ((1, 2), ("identity", "sep_conv_5x5"), "concat")),
        space="nasnet",
    )
    assert swapped == SMALL
    assert swapped.hash() == SMALL.hash()
    assert swapped.to_json() == SMALL.to_json()
    assert len({swapped, SMALL}) == 1


def test_same_input_different_ops_sort_by_op():
    assert Block((2, 2), ("sep_conv_3x3", "avg_pool_3x3")).ops == ("avg_pool_3x3", "sep_conv_3x3")


def test_numpy_ints_are_accepted_and_stored_as_python_ints():
    block = Block((np.int64(1), np.int32(0)), ("a", "b"))
    assert block.inputs == (0, 1) and all(type(i) is int for i in block.inputs)
    json.dumps(block.to_dict())  # JSON-serializable


def test_genotypes_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SMALL.space = "amoebanet"
    with pytest.raises(dataclasses.FrozenInstanceError):
        SMALL.normal.blocks[0].ops = ("a", "b")


# -- loose ends --------------------------------------------------------------------------------

def test_concat_lists_the_block_outputs_no_block_reads():
    assert SMALL.normal.concat == (3,)  # block 0 (state 2) is read by block 1
    assert cell(((0, 1), ("a", "b")), ((0, 1), ("a", "b"))).concat == (2, 3)
    assert PUBLISHED["nasnet-a"].reduction.concat == (4, 5, 6)


# -- JSON --------------------------------------------------------------------------------------

def test_json_round_trip_is_exact_and_names_the_space():
    text = SMALL.to_json()
    assert Genotype.from_json(text) == SMALL
    assert Genotype.from_json(text).to_json() == text
    assert json.loads(text)["space"] == "nasnet"
    assert Genotype.from_json(SMALL.to_json(indent=None)) == SMALL


def test_json_is_readable_one_line_per_block():
    lines = SMALL.to_json().splitlines()
    assert '    {"inputs": [0, 1], "ops": ["identity", "sep_conv_3x3"], "combine": "add"},' in lines
    assert len(lines) == 2 + 2 * (1 + 2 + 1) + 1  # braces, space, per cell: key, 2 blocks, close


def test_json_matches_the_spec_layout():
    d = json.loads(SMALL.to_json())
    assert list(d) == ["space", "normal", "reduction"]
    assert d["normal"][0] == {"inputs": [0, 1], "ops": ["identity", "sep_conv_3x3"],
                              "combine": "add"}


def test_combine_defaults_to_add_when_left_out():
    g = Genotype.from_json(genotype_json([{"inputs": [0, 1], "ops": ["a", "b"]}]))
    assert g.normal.blocks[0].combine == "add"


@settings(max_examples=60, deadline=None)
@given(space=st.sampled_from(sorted(SPACES)), seed=st.integers(0, 2**32 - 1))
def test_sampled_genotypes_survive_json_and_dict(space, seed):
    g = SPACES[space].sample(np.random.default_rng(seed))
    assert Genotype.from_json(g.to_json()) == g
    assert Genotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    assert Genotype.from_json(g.to_json()).hash() == g.hash()


def test_from_json_never_evaluates_code():
    with pytest.raises(ValueError, match="malformed JSON"):
        Genotype.from_json("__import__('os').system('echo pwned')")


def test_cellspec_and_block_dicts_round_trip():
    assert CellSpec.from_dict(SMALL.normal.to_dict()) == SMALL.normal
    # the bare list, the form a cell has inside a genotype's JSON
    assert CellSpec.from_dict(SMALL.to_dict()["normal"]) == SMALL.normal
    block = SMALL.reduction.blocks[1]
    assert Block.from_dict(block.to_dict()) == block


# -- hashing -----------------------------------------------------------------------------------

def test_hash_is_a_pinned_sha256_of_the_canonical_json():
    # Pinned: changing the canonical form would break de-duplication against older run records.
    assert PUBLISHED["nasnet-a"].hash() == \
        "a6bcd4c4ebcd32bf339ccc2b31a8a361c65c20e4364275e977bb9fa3eee3ab46"


def test_hash_differs_when_the_genotype_differs():
    other = dataclasses.replace(SMALL, space="amoebanet")
    assert other != SMALL and other.hash() != SMALL.hash()


# -- description -------------------------------------------------------------------------------

def test_describe_has_one_line_per_block():
    text = str(PUBLISHED["nasnet-a"])
    assert "  2 = sep_conv_3x3(0) + sep_conv_5x5(1)" in text
    assert "  5 = avg_pool_3x3(2) + identity(3)" in text
    assert "output = concat(4, 5, 6)" in text
    assert str(SMALL.reduction.blocks[1]) == "concat(identity(1), sep_conv_5x5(2))"


# -- bad input: ValueError naming the field, the bad value and what is allowed -----------------

BAD = [
    # (what, make, words the message must contain)
    ("input points forward", lambda: Genotype.from_json(genotype_json(
        [{"inputs": [0, 1], "ops": ["a", "b"]}, {"inputs": [0, 3], "ops": ["a", "b"]}])),
     ["normal[1].inputs[1]", "3", "0..2"]),
    ("input out of range (direct)", lambda: CellSpec((Block((0, 7), ("a", "b")),)),
     ["CellSpec.blocks[0].inputs[1]", "7", "0..1"]),
    ("negative input", lambda: Block((-1, 0), ("a", "b")), ["Block.inputs", "-1", ">= 0"]),
    ("bool input", lambda: Block((True, 0), ("a", "b")), ["Block.inputs", "True", "int"]),
    ("three inputs", lambda: Block((0, 1, 1), ("a", "b")), ["Block.inputs", "[0, 1, 1]", "2"]),
    ("one op", lambda: Genotype.from_json(genotype_json([{"inputs": [0, 1], "ops": ["a"]}])),
     ["normal[0].ops", "['a']", "exactly 2"]),
    ("empty op name", lambda: Block((0, 1), ("a", "")), ["Block.ops[1]", "''", "non-empty"]),
    ("op not a string", lambda: Block((0, 1), ("a", 3)), ["Block.ops[1]", "3", "op name"]),
    ("unknown combine", lambda: Block((0, 1), ("a", "b"), "mul"),
     ["Block.combine", "'mul'", "'add', 'concat'"]),
    ("no blocks", lambda: Genotype.from_json(genotype_json([])), ["normal", "at least 1 block"]),
    ("malformed JSON", lambda: Genotype.from_json('{"space": "nasnet",'),
     ["json", "malformed JSON", "line 1"]),
    ("JSON not an object", lambda: Genotype.from_json("[1, 2]"), ["genotype", "[1, 2]", "space"]),
    ("missing cell", lambda: Genotype.from_json('{"space": "nasnet", "normal": []}'),
     ["reduction", "missing"]),
    ("unknown key", lambda: Genotype.from_json(genotype_json(
        [{"inputs": [0, 1], "ops": ["a", "b"], "colour": 1}])),
     ["normal[0]", "'colour'", "inputs, ops, combine"]),
    ("block not an object", lambda: Genotype.from_json(genotype_json([5])), ["normal[0]", "5"]),
    ("empty space name", lambda: Genotype.from_json(genotype_json(
        [{"inputs": [0, 1], "ops": ["a", "b"]}], space="")), ["space", "''"]),
    ("cell given as a list", lambda: Genotype(normal=[], reduction=SMALL.reduction),
     ["Genotype.normal", "CellSpec"]),
]


@pytest.mark.parametrize("make, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_a_value_error_naming_the_field(make, words):
    with pytest.raises(ValueError) as info:
        make()
    assert isinstance(info.value, GenotypeError)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


# -- the package contract ----------------------------------------------------------------------

def test_search_space_imports_neither_keras_nor_tensorflow():
    code = ("import sys, search_space; "
            "bad = [m for m in ('keras', 'tensorflow') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
