"""``python -m benchmarks.nb201_hour picks``: the final-pick rules replayed on a run's recorded
trials, on a hand-made trials file whose answers follow from its numbers."""

from __future__ import annotations

import json

from benchmarks.nb201_hour import picks
from nasplay.scorers.nb201.table import table
from search_space import get_space, parse_arch_str

SMALL_RESIDUAL = ("|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
                  "|skip_connect~0|nor_conv_3x3~1|none~2|")
MID = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+"
       "|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|")
BIG = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+"
       "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
# SMALL_RESIDUAL with a different op on its dead edge 0->2 (node 2 feeds the output through none)
SMALL_RESIDUAL_TWIN = ("|skip_connect~0|+|avg_pool_3x3~0|skip_connect~1|+"
                       "|skip_connect~0|nor_conv_3x3~1|none~2|")


def _trial(trial_id, arch, accuracy, params):
    genotype = parse_arch_str(arch)
    return {"trial_id": trial_id, "status": "completed", "genotype": genotype.to_dict(),
            "metrics": {"val_accuracy": accuracy, "neg_val_loss": -1.5, "params": params}}


def _rescore(trial_id, accuracy, neg_loss):
    """A proxy re-scoring, its run's best chosen by held-out loss (as the deep recipe's)."""
    return {"trial_id": trial_id, "rescore": {
        "scorer": "proxy", "metric": "rescored_neg_val_loss", "status": "completed",
        "metrics": {"val_accuracy": accuracy, "neg_val_loss": neg_loss,
                    "rescored_neg_val_loss": neg_loss}}}


def _params_rescore(trial_id, params):
    """A synflow re-scoring by the parameter count (``--rerank-metric params``): no accuracy."""
    return {"trial_id": trial_id, "rescore": {
        "scorer": "synflow", "metric": "rescored_params", "status": "completed",
        "metrics": {"synflow": 30.0, "params": params, "rescored_params": params}}}


def test_picks_replays_each_rule_on_distinct_networks(tmp_path, capsys):
    space = get_space("nb201")
    assert space.canonical(parse_arch_str(SMALL_RESIDUAL)).hash() == \
        space.canonical(parse_arch_str(SMALL_RESIDUAL_TWIN)).hash()
    rows = [_trial("t0", MID, 0.437, 165730), _trial("t1", SMALL_RESIDUAL, 0.4355, 80610),
            _trial("t2", BIG, 0.4325, 219490),
            # the twin repeats t1's network: one distinct cell, whatever it scored
            _trial("t3", SMALL_RESIDUAL_TWIN, 0.99, 80610),
            _rescore("t0", 0.5075, -1.37), _rescore("t1", 0.55, -1.29)]
    (tmp_path / "nb201_hour_demo_s0_trials.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    rank = {arch: table().lookup(arch).rank for arch in (SMALL_RESIDUAL, MID, BIG)}

    got = picks(tmp_path)["demo_s0"]

    assert got["cells"] == 3 and got["k"] == 2
    assert got["returned"] == rank[SMALL_RESIDUAL]  # the re-scorings' best held-out loss
    assert got["rescore_accuracy"] == rank[SMALL_RESIDUAL]
    assert got["first_rung"] == rank[MID]  # 0.437 first; the twin's 0.99 is not a new cell
    assert got["most_params_top_k"] == rank[MID]  # of MID and SMALL_RESIDUAL, the larger
    # ranks by accuracy 3, 2, 1 plus by parameters 2, 1, 3: MID's 5 is the highest
    assert got["rank_average"] == rank[MID]
    assert got["best_visited"] == min(rank.values())
    assert "| demo_s0 |" in capsys.readouterr().out


def test_picks_replays_a_run_re_scored_by_parameters(tmp_path, capsys):
    """The deep-params recipe's run: its re-scorings carry the parameter count, no accuracy;
    the returned cell is the most parameters among them, the earlier trial of equals."""
    rows = [_trial("t0", MID, 0.437, 165730), _trial("t1", SMALL_RESIDUAL, 0.4355, 80610),
            _trial("t2", BIG, 0.4325, 219490),
            _params_rescore("t0", 165730), _params_rescore("t1", 80610),
            _params_rescore("t2", 219490)]
    (tmp_path / "nb201_hour_demo-params_s3_trials.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))

    got = picks(tmp_path)["demo-params_s3"]

    assert got["k"] == 3
    assert got["returned"] == table().lookup(BIG).rank
    assert got["rescore_accuracy"] is None
    assert "| demo-params_s3 | " in capsys.readouterr().out


def test_picks_ranks_a_run_by_the_value_its_recipe_searched_on(tmp_path):
    """A ``deep-sized`` run searched on ``sized_neg_val_loss``: its first rung's best is the best
    by that value, not by accuracy or the plain loss."""
    rows = [_trial("t0", MID, 0.437, 165730), _trial("t1", SMALL_RESIDUAL, 0.4355, 80610),
            _trial("t2", BIG, 0.4325, 219490)]
    for row, sized in zip(rows, (-1.40, -1.45, -1.30)):
        row["metrics"]["sized_neg_val_loss"] = sized
    (tmp_path / "nb201_hour_deep-sized_s3_trials.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))

    got = picks(tmp_path)["deep-sized_s3"]

    assert got["first_rung"] == table().lookup(BIG).rank
