"""search_space.spaces: sampling, mutation, encodings, sizes, validation and the registry."""

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_space import PUBLISHED, SPACES, Block, CellSpec, Genotype, SearchSpace, get_space
from search_space import register_space
from search_space.spaces import AMOEBANET_OPS, ARTICLE_BLOCKS, NASNET_OPS

# read at collection: the built-in spaces only (no test module registers at import)
SPACE_NAMES = sorted(SPACES)
# spaces of two-cell block genotypes (nb201's edge genotypes have their own tests:
# tests/test_nb201_space.py)
BLOCK_SPACES = sorted(name for name, space in SPACES.items() if isinstance(space, SearchSpace))
seeds = st.integers(0, 2**32 - 1)


def assert_value_error_names(make, words):
    """``make()`` raises a ValueError whose message contains each of ``words``."""
    with pytest.raises(ValueError) as info:
        make()
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


def branch_sets(decisions, space):
    """Each block's decisions as a set of (input, op) branches plus its combine: the canonical
    content of a decision sequence, blind to the order of a block's branches."""
    per_block = 5 if len(space.combines) > 1 else 4
    blocks = [decisions[j:j + per_block] for j in range(0, len(decisions), per_block)]
    return [(frozenset({(b[0], b[2]), (b[1], b[3])}), tuple(b[4:])) for b in blocks]


# -- the built-in spaces -----------------------------------------------------------------------

def test_builtin_spaces_match_the_papers():
    nasnet, amoeba, article = get_space("nasnet"), get_space("amoebanet"), get_space("article")
    assert len(nasnet.ops) == 13 and nasnet.num_blocks == 5 and nasnet.combines == ("add", "concat")
    assert len(amoeba.ops) == 8 and amoeba.num_blocks == 5 and amoeba.combines == ("add",)
    assert set(article.ops) == set(AMOEBANET_OPS) | set(ARTICLE_BLOCKS)
    assert set(NASNET_OPS) >= {"identity", "sep_conv_7x7", "dil_conv_3x3", "max_pool_7x7"}
    assert get_space("darts").num_blocks == 4


def test_decision_sizes_follow_the_documented_order():
    sizes = get_space("nasnet").decision_sizes()
    assert sizes[:5] == [2, 2, 13, 13, 2]          # block 0: input_a, input_b, op_a, op_b, combine
    assert sizes[5:10] == [3, 3, 13, 13, 2]        # block 1 may read 0..2
    assert len(sizes) == 2 * 5 * 5
    amoeba = get_space("amoebanet").decision_sizes()
    assert amoeba[:8] == [2, 2, 8, 8, 3, 3, 8, 8] and len(amoeba) == 2 * 5 * 4


# -- properties over sampled genotypes of every space ------------------------------------------

@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(SPACE_NAMES), seed=seeds)
def test_samples_validate_and_encode_decode_inverts(name, seed):
    space = SPACES[name]
    g = space.sample(np.random.default_rng(seed))
    assert g.space == name
    space.validate(g)
    decisions = space.encode(g)
    assert len(decisions) == len(space.decision_sizes())
    assert all(0 <= d < n for d, n in zip(decisions, space.decision_sizes()))
    assert space.decode(decisions) == g


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(SPACE_NAMES), seed=seeds)
def test_mutation_gives_a_valid_different_child(name, seed):
    space, rng = SPACES[name], np.random.default_rng(seed)
    parent = space.sample(rng)
    child = space.mutate(parent, rng)
    space.validate(child)
    assert child != parent and child.hash() != parent.hash()
    assert Genotype.from_json(child.to_json()) != parent


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(BLOCK_SPACES), seed=seeds)
def test_encode_of_decode_is_the_same_up_to_branch_order(name, seed):
    space = SPACES[name]
    rng = np.random.default_rng(seed)
    decisions = [int(rng.integers(n)) for n in space.decision_sizes()]
    again = space.encode(space.decode(decisions))
    assert branch_sets(again, space) == branch_sets(decisions, space)


def mutation_kinds(parent, child):
    """What changed between parent and child, per changed block: hidden_state, op or combine."""
    pairs = zip(parent.normal.blocks + parent.reduction.blocks,
                child.normal.blocks + child.reduction.blocks)
    kinds = []
    for old, new in pairs:
        if old == new:
            continue
        if old.combine != new.combine:
            kinds.append("combine" if (old.inputs, old.ops) == (new.inputs, new.ops) else "several")
        elif sorted(old.ops) == sorted(new.ops):
            kinds.append("hidden_state")
        elif sorted(old.inputs) == sorted(new.inputs):
            kinds.append("op")
        else:
            kinds.append("several")
    return kinds


@pytest.mark.parametrize("name, expected", [
    ("amoebanet", {"hidden_state", "op"}),
    ("nasnet", {"hidden_state", "op", "combine"}),
])
def test_each_mutation_changes_one_block_in_one_way(name, expected):
    space, rng = get_space(name), np.random.default_rng(0)
    seen = set()
    for _ in range(150):
        parent = space.sample(rng)
        kinds = mutation_kinds(parent, space.mutate(parent, rng))
        assert len(kinds) == 1 and kinds[0] != "several", kinds
        seen.add(kinds[0])
    assert seen == expected


def test_mutation_is_reproducible_from_the_seed():
    space = get_space("nasnet")
    parent = space.sample(np.random.default_rng(3))
    children = [space.mutate(parent, np.random.default_rng(7)) for _ in range(2)]
    assert children[0] == children[1]


def test_mutation_works_in_a_space_with_one_op():
    space = SearchSpace("one-op", ops=("identity",), num_blocks=1)
    g = space.sample(np.random.default_rng(0))
    assert space.mutate(g, np.random.default_rng(0)) != g


def test_mutating_a_published_cell_in_a_larger_space_labels_the_child_with_that_space():
    child = get_space("article").mutate(PUBLISHED["amoebanet-a"], np.random.default_rng(0))
    assert child.space == "article"
    get_space("article").validate(child)


def test_sample_wants_a_generator():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        get_space("nasnet").sample(0)


# -- sizes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("space", [
    SearchSpace("bf-combines", ops=("a", "b"), num_blocks=1, combines=("add", "concat")),
    SearchSpace("bf-blocks", ops=("a",), num_blocks=2),
    SearchSpace("bf-mixed", ops=("a", "b", "c"), num_blocks=1),
], ids=lambda s: s.name)
def test_size_matches_a_brute_force_count(space):
    sequences = list(itertools.product(*(range(n) for n in space.decision_sizes())))
    assert space.size() == len(sequences)
    assert space.size(canonical=True) == len({space.decode(d) for d in sequences})


def test_size_of_the_nasnet_space_is_the_product_of_its_choices():
    per_cell = 1
    for i in range(5):
        per_cell *= (i + 2) ** 2 * 13 ** 2 * 2
    assert get_space("nasnet").size() == per_cell ** 2


# -- decode and validate errors ----------------------------------------------------------------

@pytest.mark.parametrize("decisions, words", [
    ([0] * 39, ["decisions", "40", "39"]),
    ([0] * 4 + [3] + [0] * 35, ["decisions[4]", "normal[1].input_a", "3", "0..2"]),
    ([0, 0, 8] + [0] * 37, ["decisions[2]", "normal[0].op_a", "8", "0..7"]),
    ([-1] + [0] * 39, ["decisions[0]", "-1"]),
    ([0.5] + [0] * 39, ["decisions[0]", "0.5"]),
    ("0" * 40, ["decisions", "str"]),
])
def test_decode_rejects_bad_decisions(decisions, words):
    assert_value_error_names(lambda: get_space("amoebanet").decode(decisions), words)


def test_decode_accepts_a_numpy_array():
    space = get_space("amoebanet")
    g = space.sample(np.random.default_rng(0))
    assert space.decode(np.array(space.encode(g))) == g


@pytest.mark.parametrize("genotype, words", [
    (PUBLISHED["darts-v2"], ["normal", "4 blocks", "5"]),
    (Genotype(CellSpec(PUBLISHED["nasnet-a"].normal.blocks[:4]
                       + (Block((0, 1), ("conv_9x9", "identity")),)),
              PUBLISHED["nasnet-a"].reduction),
     ["normal[4].ops[0]", "'conv_9x9'", "'amoebanet'", "sep_conv_3x3"]),
    (Genotype(PUBLISHED["nasnet-a"].normal,
              CellSpec(PUBLISHED["nasnet-a"].reduction.blocks[:4]
                       + (Block((0, 1), ("identity", "identity"), "concat"),))),
     ["reduction[4].combine", "'concat'", "allowed: add"]),
])
def test_validate_names_the_field_that_does_not_fit(genotype, words):
    assert_value_error_names(lambda: get_space("amoebanet").validate(genotype), words)


def test_encode_rejects_a_genotype_outside_the_space():
    all_conv_3x3 = get_space("nasnet").decode([0, 0, 9, 9, 0] * 10)
    with pytest.raises(ValueError, match="'conv_3x3' is not an op of space 'amoebanet'"):
        get_space("amoebanet").encode(all_conv_3x3)


# -- spaces and the registry -------------------------------------------------------------------

def test_a_new_space_is_a_few_lines(registries):
    register_space(SearchSpace("tiny", ops=("identity", "conv_3x3"), num_blocks=2))
    tiny = get_space("tiny")
    g = tiny.sample(np.random.default_rng(0))
    assert g.space == "tiny" and len(g.normal.blocks) == 2
    assert tiny.size() == (2 * 2 * 2 * 2 * 3 * 3 * 2 * 2) ** 2


def test_get_space_lists_the_known_spaces_for_an_unknown_name():
    with pytest.raises(ValueError) as info:
        get_space("nasnet-b")
    message = str(info.value)
    assert "'nasnet-b'" in message
    assert all(name in message for name in ("nasnet", "amoebanet", "article"))


def test_registering_an_equal_space_again_is_fine_but_a_different_one_needs_replace(registries):
    register_space(SearchSpace("tiny", ops=("identity",), num_blocks=1))
    register_space(SearchSpace("tiny", ops=["identity"], num_blocks=1))  # same settings
    with pytest.raises(ValueError, match="replace=True"):
        register_space(SearchSpace("tiny", ops=("conv_3x3",), num_blocks=1))
    register_space(SearchSpace("tiny", ops=("conv_3x3",), num_blocks=1), replace=True)
    assert get_space("tiny").ops == ("conv_3x3",)


@pytest.mark.parametrize("kwargs, words", [
    (dict(name="", ops=("a",)), ["SearchSpace.name"]),
    (dict(name="s", ops=()), ["SearchSpace.ops", "non-empty"]),
    (dict(name="s", ops="identity"), ["SearchSpace.ops", "'identity'"]),
    (dict(name="s", ops=("a", "a")), ["SearchSpace.ops", "'a'", "once"]),
    (dict(name="s", ops=("a",), num_blocks=0), ["SearchSpace.num_blocks", "0", ">= 1"]),
    (dict(name="s", ops=("a",), combines=("mul",)), ["SearchSpace.combines", "'mul'", "'add'"]),
])
def test_bad_space_settings_name_the_field(kwargs, words):
    assert_value_error_names(lambda: SearchSpace(**kwargs), words)


@pytest.mark.parametrize("name", ["nasnet", "amoebanet", "darts"])
def test_decision_labels_name_each_decision_in_encoding_order(name):
    space = get_space(name)
    labels = space.decision_labels()
    assert len(labels) == len(space.decision_sizes()) == len(set(labels))
    per_block = 5 if len(space.combines) > 1 else 4
    assert labels[:per_block] == ["normal[0].input_a", "normal[0].input_b", "normal[0].op_a",
                                  "normal[0].op_b", "normal[0].combine"][:per_block]
    assert labels[-1] == f"reduction[{space.num_blocks - 1}]." + ("combine" if per_block == 5 else "op_b")
    # A wrong decision is reported under the same label.
    decisions = [0] * len(labels)
    decisions[per_block + 2] = 99
    with pytest.raises(ValueError, match=re.escape(f"({labels[per_block + 2]})")):
        space.decode(decisions)
