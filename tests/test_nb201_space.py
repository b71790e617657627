"""The nb201 space: edge genotypes, NAS-Bench-201's cell string both ways, the searchers' protocol."""

import csv
import gzip
import json

import numpy as np
import pytest

from search_space import (EdgeGenotype, Genotype, GenotypeError, get_space, load_genotype,
                          parse_arch_str)
from searchers import Controller, RandomSearch, RegularizedEvolution, warm_start

BEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|"
        "nor_conv_3x3~2|")


@pytest.fixture
def space():
    return get_space("nb201")


def test_the_space_is_nas_bench_201s(space):
    assert space.ops == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert space.num_nodes == 4 and space.size() == 15_625 == space.size(canonical=True)
    assert space.decision_sizes() == [5] * 6
    assert space.decision_labels() == ["edge[0->1]", "edge[0->2]", "edge[1->2]", "edge[0->3]",
                                       "edge[1->3]", "edge[2->3]"]


def test_arch_string_round_trips_and_orders_edges_like_the_paper(space):
    genotype = space.from_arch_str(BEST)
    assert genotype.nodes == (("nor_conv_3x3",), ("nor_conv_3x3", "nor_conv_3x3"),
                              ("skip_connect", "nor_conv_1x1", "nor_conv_3x3"))
    assert genotype.edges()[3] == (0, 3, "skip_connect")
    assert space.to_arch_str(genotype) == BEST
    assert parse_arch_str(f"  {BEST}\n") == genotype == load_genotype(BEST)


def test_every_cell_of_the_shipped_table_round_trips(space):
    from nasplay.scorers.nb201.table import TABLE_PATH

    with gzip.open(TABLE_PATH, "rt") as f:
        arch_strs = [row["arch_str"] for row in csv.DictReader(f)]
    genotypes = {space.from_arch_str(text) for text in arch_strs}
    assert len(genotypes) == 15_625
    assert all(space.to_arch_str(space.from_arch_str(text)) == text for text in arch_strs[:500])
    assert {tuple(space.encode(g)) for g in genotypes} == set(
        np.ndindex(*space.decision_sizes()))  # the table covers the whole space


@pytest.mark.parametrize("text, words", [
    ("|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["node 1", "unknown op 'conv_9x9'",
                                                            "nor_conv_3x3"]),
    ("|none~0|+|none~0|none~5|+|none~0|none~1|none~2|", ["node 2", "none~5", "nodes 0..1"]),
    ("|none~0|+|none~0|none~x|+|none~0|none~1|none~2|", ["node 2", "none~x"]),
    ("|none~0|+|none~0|none~1|", ["2 node group(s)", "has 3"]),
    ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", ["node 2", "node 0 is read twice"]),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", ["node 2", "no edge from node(s) 1"]),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["node 1", "'|' at both ends"]),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", ["node 1", "'none0' is not op~i"]),
])
def test_a_malformed_arch_string_names_the_bad_part(space, text, words):
    with pytest.raises(ValueError) as info:
        space.from_arch_str(text)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_json_round_trip_and_the_one_reader_of_genotype_json(space):
    genotype = space.sample(np.random.default_rng(3))
    assert Genotype.from_json(genotype.to_json()) == genotype
    assert Genotype.from_dict(genotype.to_dict()) == genotype
    assert EdgeGenotype.from_json(genotype.to_json(indent=None)) == genotype
    assert genotype.hash() == Genotype.from_json(genotype.to_json()).hash()
    assert genotype.hash() != get_space("nb201").mutate(genotype, np.random.default_rng(0)).hash()


@pytest.mark.parametrize("data, words", [
    ({"space": "nb201", "nodes": [["none"], ["none"], ["none", "none", "none"]]},
     ["nodes[1]", "exactly 2"]),
    ({"space": "nb201", "nodes": [["none"], ["none", 3], ["none", "none", "none"]]},
     ["nodes[1][1]", "edge 1->2"]),
    ({"space": "nb201", "nodes": "none"}, ["nodes", "one list of op names per node"]),
    ({"space": "nb201", "nodes": [["none"]], "extra": 1}, ["unknown key(s) 'extra'"]),
    ({"nodes": [["none"]]}, ["space", "missing"]),
])
def test_a_malformed_edge_genotype_names_the_field(data, words):
    with pytest.raises(GenotypeError) as info:
        Genotype.from_dict(data)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


def test_validate_names_an_op_outside_the_space_and_refuses_the_other_kind(space):
    foreign = EdgeGenotype(nodes=(("none",), ("none", "sep_conv_3x3"),
                                  ("none", "none", "none")))
    with pytest.raises(GenotypeError, match=r"nodes\[1\]\[1\].*'sep_conv_3x3' \(edge 1->2\)"):
        space.validate(foreign)
    with pytest.raises(GenotypeError, match="2 nodes; space 'nb201' has 4"):
        space.validate(EdgeGenotype(nodes=(("none",),)))
    with pytest.raises(ValueError, match="takes an edge genotype"):
        space.validate(get_space("amoebanet").sample(np.random.default_rng(0)))
    with pytest.raises(ValueError):
        get_space("amoebanet").validate(space.sample(np.random.default_rng(0)))


def test_encode_decode_invert_and_decode_names_a_bad_decision(space):
    rng = np.random.default_rng(0)
    for _ in range(50):
        genotype = space.sample(rng)
        assert space.decode(space.encode(genotype)) == genotype
    with pytest.raises(ValueError, match=r"decisions\[2\] \(edge\[1->2\]\): got 5"):
        space.decode([0, 0, 5, 0, 0, 0])
    with pytest.raises(ValueError, match="takes 6 decisions"):
        space.decode([0] * 5)


def test_mutation_changes_exactly_one_edge_to_another_op(space):
    rng = np.random.default_rng(1)
    changed_edges = set()
    for _ in range(200):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        diffs = [k for k, (a, b) in enumerate(zip(space.encode(parent), space.encode(child)))
                 if a != b]
        assert len(diffs) == 1 and child.space == "nb201"
        changed_edges.add(diffs[0])
    assert changed_edges == set(range(6))


def test_sampling_is_uniform_over_ops_and_reproducible(space):
    a = [space.encode(space.sample(np.random.default_rng(7))) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(0)
    counts = np.zeros(5)
    for _ in range(2000):
        for d in space.encode(space.sample(rng)):
            counts[d] += 1
    assert counts.min() / counts.sum() > 0.18


@pytest.mark.parametrize("make", [
    lambda space: RandomSearch(space, seed=0, max_trials=30),
    lambda space: RegularizedEvolution(space, seed=0, max_trials=30, population_size=8,
                                       sample_size=3),
])
def test_searchers_search_nb201_and_resume_from_their_state(space, make):
    searcher = make(space)
    seen = []
    for step in range(20):
        proposal = searcher.ask()
        seen.append(proposal.genotype.hash())
        searcher.tell(proposal.trial_id, float(sum(space.encode(proposal.genotype))))
    state = searcher.state_dict()
    again = make(space)
    again.load_state_dict(state)
    assert [again.ask().genotype for _ in range(5)] == [searcher.ask().genotype for _ in range(5)]
    assert len(set(seen)) == len(seen)


def test_the_controller_proposes_nb201_cells(space):
    controller = Controller(space, seed=0, max_trials=10, batch_size=4)
    for _ in range(8):
        proposal = controller.ask()
        space.validate(proposal.genotype)
        controller.tell(proposal.trial_id, 0.5)
    assert controller.num_completed == 8


def test_warm_start_takes_nb201_dicts_and_refuses_another_space(space):
    rng = np.random.default_rng(0)
    results = [(space.sample(rng).to_dict(), 0.5), (space.sample(rng), 0.6)]
    searcher = RegularizedEvolution(space, seed=0, population_size=4, sample_size=2)
    assert warm_start(searcher, results) == 2
    with pytest.raises(ValueError, match="space 'amoebanet'"):
        warm_start(searcher, [(get_space("amoebanet").sample(rng), 0.5)])


# -- one network, many genotypes: the canonical form ---------------------------------------------


def test_an_edge_the_output_cannot_feel_is_no_edge(space):
    # node 1 is zeros (none from the input): the skip and the pool reading it are zeros too; the
    # conv reading it is kept (its batch norm adds a learned bias); node 2 feeds nothing
    cell = space.from_arch_str("|none~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|"
                               "skip_connect~1|none~2|")
    assert space.to_arch_str(space.canonical(cell)) == \
        "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    biased = space.from_arch_str("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|")
    assert space.canonical(biased) == biased
    best = space.from_arch_str(BEST)          # every edge on a path from input to output
    assert space.canonical(best) == best and space.canonical(space.canonical(cell)) == \
        space.canonical(cell)


def test_the_15625_genotypes_are_10405_networks(space):
    import itertools

    networks = {space.canonical(space.decode(d)).hash()
                for d in itertools.product(range(5), repeat=6)}
    assert len(networks) == 10_405


def test_zero_preserving_ops_must_be_ops_of_the_space():
    from search_space import EdgeSpace

    with pytest.raises(ValueError, match="zero_preserving: expected a list of ops of the space"):
        EdgeSpace("bad", ("none", "conv"), zero_preserving=("skip_connect",))


def test_a_searcher_never_scores_one_network_twice(space):
    searcher = RegularizedEvolution(space, seed=0, population_size=10, sample_size=3)
    keys = []
    for _ in range(300):
        proposal = searcher.ask()
        keys.append(space.canonical(proposal.genotype).hash())
        searcher.tell(proposal.trial_id, float(np.random.default_rng(len(keys)).random()))
    assert len(set(keys)) == 300
    # a state saved before searchers compared networks goes on comparing genotypes, as it did
    state = json.loads(json.dumps(searcher.state_dict()))
    assert state["seen_by"] == "network"
    old = {k: v for k, v in state.items() if k != "seen_by"}
    restored = RegularizedEvolution(space, seed=0, population_size=10, sample_size=3)
    restored.load_state_dict(old)
    assert restored.state_dict()["seen_by"] == "genotype"
