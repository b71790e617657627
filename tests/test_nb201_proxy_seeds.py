"""``python -m benchmarks.nb201_proxy seeds``: one budget measured at two seeds, judged on a
hand-made rows file whose answers follow from its numbers (no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.nb201_proxy import RAW_NAME, SEEDS_NAME, seeds, table
from benchmarks.nb201_truth import sample_cells


def _row(cell: dict, seed: int, accuracy: float, loss: float) -> dict:
    return {"sample": "random", "budget": "c8n5-e1-10k", "index": cell["index"],
            "arch_str": cell["arch_str"], "val_accuracy": accuracy, "val_loss": loss,
            "params": 1, "train_seconds": 1.0, "wall_seconds": 2.0, "cpu_seconds": 1.0,
            "seed": seed}


@pytest.fixture
def rows(tmp_path):
    """Seed 0 scores 12 cells exactly as the table does; seed 4 has them in reverse order, but
    for its loss, which agrees with seed 0's; a cell only seed 0 measured is left out."""
    cells = sample_cells()[:13]
    truth = np.array([c["val_accuracy"] for c in cells[:12]])
    lines = [_row(c, 0, t, 2 - t) for c, t in zip(cells, truth)]
    lines += [_row(c, 4, -2 * t, 2 - t) for c, t in zip(cells, truth)]
    lines.append(_row(cells[12], 0, cells[12]["val_accuracy"], 1.5))
    (tmp_path / RAW_NAME).write_text("".join(json.dumps(r) + "\n" for r in lines))
    return tmp_path


def test_seeds_judges_each_seed_their_agreement_and_their_mean(rows):
    result = seeds("c8n5-e1-10k", rows)
    stats = {name: s["spearman"] for name, s in result["stats"].items()}
    assert len(result["cells"]) == 12 and result["seeds"] == [0, 4]
    assert stats["seed 0, accuracy"] == pytest.approx(1.0)
    assert stats["seed 4, accuracy"] == pytest.approx(-1.0)
    assert stats["seed 0 against seed 4, accuracy (agreement)"] == pytest.approx(-1.0)
    assert stats["seed 0 against seed 4, loss (agreement)"] == pytest.approx(1.0)
    assert stats["mean of seeds 0, 4, loss"] == pytest.approx(1.0)
    assert json.loads((rows / SEEDS_NAME).read_text())["cells"] == result["cells"]


def test_the_budget_table_never_mixes_seeds(rows):
    result = table(rows)
    assert result["budgets"]["c8n5-e1-10k"]["stats"]["val_accuracy"]["spearman"] == \
        pytest.approx(1.0)
    assert len(result["budgets"]["c8n5-e1-10k"]["cells"]) == 13
    assert result["budgets"]["c8n5-e1-10k seed 4"]["stats"]["val_accuracy"]["spearman"] == \
        pytest.approx(-1.0)


def test_one_seed_is_refused_with_what_to_do(tmp_path):
    cell = sample_cells()[0]
    (tmp_path / RAW_NAME).write_text(json.dumps(_row(cell, 0, 0.5, 1.5)) + "\n")
    with pytest.raises(SystemExit, match="measure it with another --seed first"):
        seeds("c8n5-e1-10k", tmp_path)
