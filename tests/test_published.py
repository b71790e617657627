"""search_space.published and load_genotype: the published cells and loading genotypes by name
or from a file."""

import json

import pytest

from search_space import PUBLISHED, SPACES, Genotype, get_space, load_genotype


def test_the_published_cells_are_there():
    assert set(PUBLISHED) == {"nasnet-a", "amoebanet-a", "enas", "darts-v2"}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_published_cell_fits_the_space_it_names_and_survives_json(name):
    g = PUBLISHED[name]
    assert g.space in SPACES
    get_space(g.space).validate(g)
    assert Genotype.from_json(g.to_json()) == g


@pytest.mark.parametrize("name", ["nasnet-a", "amoebanet-a", "enas"])
def test_five_block_published_cells_also_fit_the_article_space(name):
    get_space("article").validate(PUBLISHED[name])  # e.g. to seed an evolution there


@pytest.mark.parametrize("name, normal, reduction", [
    ("nasnet-a", (2, 3, 4, 5, 6), (4, 5, 6)),     # DARTS's NASNet: [2..6], [4, 5, 6]
    ("amoebanet-a", (4, 5, 6), (3, 4, 6)),        # DARTS's AmoebaNet: [4, 5, 6], [3, 4, 6]
    ("enas", (2, 3, 4, 5, 6), (2, 4, 5, 6)),      # loose ends of the authors' arc
    ("darts-v2", (3, 4, 5), (3, 4, 5)),           # DARTS concatenates 2..5; node 2 is read
])
def test_published_loose_ends(name, normal, reduction):
    assert PUBLISHED[name].normal.concat == normal
    assert PUBLISHED[name].reduction.concat == reduction


def test_nasnet_a_matches_keras_applications():
    reduction = PUBLISHED["nasnet-a"].reduction.blocks
    # keras _reduction_a_cell: x4 = avg_pool(x1) + x2; x5 = sep_conv_3x3(x1) + max_pool(h)
    assert (reduction[3].inputs, reduction[3].ops) == ((2, 3), ("avg_pool_3x3", "identity"))
    assert (reduction[4].inputs, reduction[4].ops) == ((1, 2), ("max_pool_3x3", "sep_conv_3x3"))
    normal = PUBLISHED["nasnet-a"].normal.blocks
    assert (normal[3].inputs, normal[3].ops) == ((0, 0), ("avg_pool_3x3", "avg_pool_3x3"))


def test_darts_and_amoeba_op_names_are_translated():
    darts_ops = {op for c in (PUBLISHED["darts-v2"].normal, PUBLISHED["darts-v2"].reduction)
                 for b in c.blocks for op in b.ops}
    assert darts_ops == {"sep_conv_3x3", "identity", "dil_sep_conv_3x3", "max_pool_3x3"}
    last = PUBLISHED["amoebanet-a"].reduction.blocks[4]
    assert (last.inputs, last.ops) == ((0, 5), ("conv_1x7_7x1", "sep_conv_3x3"))


def test_enas_is_the_authors_arc():
    # scripts/cifar10_micro_final.sh, normal block 2: "0 4 1 1" = identity(0) + sep_conv_5x5(1)
    block = PUBLISHED["enas"].normal.blocks[2]
    assert (block.inputs, block.ops) == ((0, 1), ("identity", "sep_conv_5x5"))


# -- load_genotype -----------------------------------------------------------------------------

def test_load_by_name_ignores_case():
    assert load_genotype("nasnet-a") is PUBLISHED["nasnet-a"]
    assert load_genotype("AmoebaNet-A") is PUBLISHED["amoebanet-a"]


def test_load_from_a_file(tmp_path):
    path = tmp_path / "best_genotype.json"
    path.write_text(PUBLISHED["enas"].to_json())
    assert load_genotype(path) == PUBLISHED["enas"]
    assert load_genotype(str(path)) == PUBLISHED["enas"]


def test_load_from_a_trial_record(tmp_path):
    path = tmp_path / "trial.json"
    path.write_text(json.dumps({"trial_id": "t1", "genotype": PUBLISHED["darts-v2"].to_dict()}))
    assert load_genotype(path) == PUBLISHED["darts-v2"]


def write(tmp_path, text):
    path = tmp_path / "g.json"
    path.write_text(text)
    return path


def with_first_op(op):
    d = PUBLISHED["amoebanet-a"].to_dict()
    d["normal"][0]["ops"][0] = op
    return json.dumps(d)


@pytest.mark.parametrize("text, words", [
    ('{"space": "amoebanet", ', ["g.json", "malformed JSON", "line 1"]),
    (PUBLISHED["nasnet-a"].to_json().replace('"nasnet"', '"nope"'),
     ["g.json", "unknown space 'nope'", "amoebanet", "nasnet"]),
    (with_first_op("conv_9x9"), ["g.json", "normal[0].ops[0]", "'conv_9x9'", "allowed"]),
    ('{"space": "amoebanet", "normal": [], "reduction": []}', ["g.json", "normal", "at least 1"]),
])
def test_load_errors_name_the_file_and_the_problem(tmp_path, text, words):
    with pytest.raises(ValueError) as info:
        load_genotype(write(tmp_path, text))
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


def test_load_unknown_name_lists_the_published_cells():
    with pytest.raises(ValueError) as info:
        load_genotype("nasnet-b")
    assert "'nasnet-b'" in str(info.value)
    assert all(name in str(info.value) for name in PUBLISHED)


def test_load_a_directory_says_so(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        load_genotype(tmp_path)
