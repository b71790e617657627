"""``nasplay inspect`` on run directories the tests write (fake metrics, no search, no training)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fake_runs import fake_trials, write_run
from nasplay import cli, rundir
from nasplay.diagrams import cell_dot, cell_graph
from nasplay.report import best_so_far
from search_space import Genotype

FIGURES = ("best_normal.png", "best_reduction.png", "progress.png", "accuracy_vs_params.png")


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path / "run-a", fake_trials(12, seed=1))


def inspect(capsys, *argv):
    code = cli.main(["inspect", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def leaderboard_rows(out: str) -> list[list[str]]:
    """The rows of the printed leaderboards (lines that start with a rank)."""
    return [line.split() for line in out.splitlines() if line.split() and line.split()[0].isdigit()]


def assert_nontrivial_png(path, min_side=150, min_colours=8):
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.shape[0] >= min_side and image.shape[1] >= min_side, image.shape
    pixels = (image[..., :3].reshape(-1, 3) * 255).round().astype(np.uint8)
    colours = np.unique(pixels, axis=0)
    assert len(colours) >= min_colours, f"{path}: only {len(colours)} colours"


def test_leaderboard_is_ordered_by_val_accuracy(run_dir, capsys):
    code, out, _ = inspect(capsys, run_dir, "--top", "5", "--no-figures")
    assert code == 0
    rows = leaderboard_rows(out)
    scores = [float(row[2]) for row in rows]
    completed = [t["metrics"]["val_accuracy"] for t in rundir.read_trials(run_dir)
                 if t["status"] == "completed"]
    assert scores == pytest.approx(sorted(completed, reverse=True)[:5], abs=1e-4)
    assert [row[0] for row in rows] == ["1", "2", "3", "4", "5"]


def test_summary_counts_completed_and_failed(run_dir, capsys):
    _, out, _ = inspect(capsys, run_dir, "--no-figures")
    assert "12 trials finished: 9 completed, 3 failed" in out
    header = next(line for line in out.splitlines() if line.startswith("rank"))
    for column in ("trial", "val_accuracy", "params", "FLOPs", "train s", "step"):
        assert column in header


def test_figures_are_nontrivial_images(run_dir, capsys):
    code, _, _ = inspect(capsys, run_dir)
    assert code == 0
    for name in FIGURES:
        assert_nontrivial_png(run_dir / "report" / name)


def test_dot_files_name_every_op_of_the_best_cells(run_dir, capsys):
    inspect(capsys, run_dir)
    best = rundir.ranked(rundir.read_trials(run_dir))[0]
    genotype = Genotype.from_dict(best["genotype"])
    for kind, cell in (("normal", genotype.normal), ("reduction", genotype.reduction)):
        text = (run_dir / "report" / f"best_{kind}.dot").read_text()
        assert text.startswith("digraph")
        for block in cell.blocks:
            for op in block.ops:
                assert f'label="{op}' in text


def test_inspect_never_modifies_trials_jsonl(run_dir, capsys):
    path = run_dir / "trials.jsonl"
    before = path.read_bytes(), path.stat().st_mtime_ns
    inspect(capsys, run_dir)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_run_still_writing_its_last_line(tmp_path, capsys):
    trials = fake_trials(8, seed=3)
    half = json.dumps(fake_trials(9, seed=3)[-1])[:40]      # a record cut mid-write
    run_dir = write_run(tmp_path / "running", trials, partial_line=half)
    before = (run_dir / "trials.jsonl").read_bytes()
    code, out, err = inspect(capsys, run_dir)
    assert code == 0, err
    assert "8 trials finished" in out and "still being written" in out
    assert (run_dir / "trials.jsonl").read_bytes() == before
    assert_nontrivial_png(run_dir / "report" / "progress.png")


def test_out_puts_figures_elsewhere(run_dir, tmp_path, capsys):
    code, _, _ = inspect(capsys, run_dir, "--out", tmp_path / "figs")
    assert code == 0
    assert all((tmp_path / "figs" / name).is_file() for name in FIGURES)
    assert not (run_dir / "report").exists()


@pytest.mark.parametrize("aggregate", [False, True])
def test_two_runs_overlay(tmp_path, capsys, aggregate):
    a = write_run(tmp_path / "a", fake_trials(10, seed=1))
    b = write_run(tmp_path / "b", fake_trials(14, seed=2, searcher="evolution"),
                  config={"searcher": "evolution", "space": "nasnet"})
    extra = ["--aggregate"] if aggregate else []
    code, out, _ = inspect(capsys, a, b, "--out", tmp_path / "cmp", *extra)
    assert code == 0
    assert_nontrivial_png(tmp_path / "cmp" / "compare.png")
    assert (tmp_path / "cmp" / "a" / "progress.png").is_file()
    assert (tmp_path / "cmp" / "b" / "best_normal.png").is_file()
    assert "a (random)" in out and "b (evolution)" in out    # the comparison table


def test_runs_without_scores_yet_are_skipped_while_others_remain(tmp_path, capsys):
    done = write_run(tmp_path / "done", fake_trials(5, seed=1))
    waiting = write_run(tmp_path / "waiting", [])
    code, out, err = inspect(capsys, done, waiting, "--no-figures")
    assert code == 0 and "done" in out and f"skipped: run {waiting} has no finished" in err
    code, _, err = inspect(capsys, waiting, write_run(tmp_path / "also-waiting", []))
    assert code == 2 and "none of the 2 runs" in err


def test_metric_from_config_ranks_zero_cost_runs(tmp_path, capsys):
    trials = fake_trials(6, seed=4, failed_every=0)
    for k, trial in enumerate(trials):
        trial["metrics"] = {"naswot": 300.0 + k, "params": 1000 + k}
    run_dir = write_run(tmp_path / "zc", trials, config={"searcher": "random", "metric": "naswot"})
    code, out, _ = inspect(capsys, run_dir, "--no-figures")
    assert code == 0
    assert [float(row[2]) for row in leaderboard_rows(out)] == [305, 304, 303, 302, 301, 300]


@pytest.mark.parametrize("case", ["missing", "not_a_run", "empty", "all_failed", "bad_top",
                                  "unwritable_out"])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, case):
    argv = []
    if case == "missing":
        argv = [tmp_path / "nowhere"]
    elif case == "not_a_run":
        (tmp_path / "stuff").mkdir()
        (tmp_path / "stuff" / "notes.txt").write_text("hello")
        argv = [tmp_path / "stuff"]
    elif case == "empty":
        argv = [write_run(tmp_path / "empty", [])]
    elif case == "all_failed":
        failed = fake_trials(4, seed=0, failed_every=1)
        argv = [write_run(tmp_path / "failed", failed)]
    elif case == "bad_top":
        argv = [write_run(tmp_path / "r", fake_trials(3)), "--top", "0"]
    elif case == "unwritable_out":
        (tmp_path / "a-file").write_text("")      # a folder under a file: fails even for root
        argv = [write_run(tmp_path / "r", fake_trials(3)), "--out", tmp_path / "a-file" / "figs"]
    code, out, err = inspect(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("nasplay inspect: error:")


def test_all_failed_message_quotes_the_first_error(tmp_path, capsys):
    run_dir = write_run(tmp_path / "failed", fake_trials(4, seed=0, failed_every=1))
    _, _, err = inspect(capsys, run_dir)
    assert "all 4 trials" in err and "ResourceExhaustedError" in err


def test_best_so_far_is_monotone_and_nan_before_first_score():
    trials = [{"status": "failed"},
              {"status": "completed", "metrics": {"val_accuracy": 0.3}},
              {"status": "completed", "metrics": {"val_accuracy": 0.2}},
              {"status": "completed", "metrics": {"val_accuracy": 0.5}}]
    curve = best_so_far(trials, "val_accuracy")
    assert math.isnan(curve[0]) and curve[1:] == [0.3, 0.3, 0.5]


def test_cell_graph_layout_points_forward():
    rng = np.random.default_rng(0)
    from search_space.spaces import get_space

    for _ in range(20):
        cell = get_space("nasnet").sample(rng).normal
        graph = cell_graph(cell)
        column = {key: x for x, col in enumerate(graph.columns) for key in col}
        assert all(column[s] < column[t] for s, t in graph.edges)
        ops = [n for n in graph.nodes.values() if n.kind == "op"]
        assert len(ops) == 2 * len(cell.blocks)
        assert sum(1 for _, t in graph.edges if t == "out") == len(cell.concat)
        assert cell_dot(cell).count("->") == len(graph.edges)


def test_read_trials_leaves_out_any_unterminated_last_line(tmp_path):
    """A writer ends every record with its newline in the same write; without it the line is
    torn (a resumed search cuts it off), even if it happens to parse."""
    trials = fake_trials(3)
    run_dir = write_run(tmp_path / "r", trials[:2], partial_line=json.dumps(trials[2]))
    log = rundir.load_trials(run_dir)
    assert len(log.trials) == 2 and log.partial_tail


def test_unreadable_complete_line_is_skipped_and_reported(tmp_path, capsys):
    run_dir = write_run(tmp_path / "r", fake_trials(4, failed_every=0))
    with open(run_dir / "trials.jsonl", "a") as f:
        f.write("{not json\n")
    assert rundir.load_trials(run_dir).bad_lines == [5]
    code, out, err = inspect(capsys, run_dir, "--no-figures")
    assert code == 0 and "4 trials finished" in out and "line(s) 5" in err


def test_zero_cost_runs_rank_by_naswot_without_a_metric_key(tmp_path):
    assert rundir.run_metric({"scorer": "zero-cost", "metric": None}) == "naswot"
    assert rundir.run_metric({"scorer": "proxy"}) == "val_accuracy"
    assert rundir.run_metric({"scorer": "proxy"}, override="train_accuracy") == "train_accuracy"
