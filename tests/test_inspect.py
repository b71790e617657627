"""``nasplay inspect`` on run directories the tests write (fake metrics, no search, no training)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fake_runs import fake_trials, write_run
from nasplay.cli import dispatch as cli
from nasplay.report import plots
from nasplay.report.diagrams import FAMILY_NAMES, cell_dot, cell_graph, draw_cell, op_family
from nasplay.report.inspect import best_so_far, load_run
from nasplay.runs import rundir
from search_space import PUBLISHED, Genotype, get_space, load_genotype

FIGURES = ("best_normal.png", "best_reduction.png", "progress.png", "val_accuracy_vs_params.png")


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


# --- cell diagrams: layout ----------------------------------------------------------------------

def published_cells():
    for name in PUBLISHED:
        genotype = load_genotype(name)
        yield f"{name}-normal", genotype.normal, False
        yield f"{name}-reduction", genotype.reduction, True


@pytest.mark.parametrize("name,cell,reduction", list(published_cells()),
                         ids=[c[0] for c in published_cells()])
def test_layout_crosses_no_more_than_index_order(name, cell, reduction):
    graph = cell_graph(cell, reduction=reduction)
    naive = cell_graph(cell, reduction=reduction, order="index")
    assert graph.crossings() <= naive.crossings()
    assert sorted(map(sorted, graph.columns)) == sorted(map(sorted, naive.columns))


def test_layout_removes_crossings_on_published_cells():
    """Not just no worse: over the published cells the ordering removes crossings."""
    ours = sum(cell_graph(c, reduction=r).crossings() for _, c, r in published_cells())
    naive = sum(cell_graph(c, reduction=r, order="index").crossings()
                for _, c, r in published_cells())
    assert ours < naive, (ours, naive)


def test_layout_swapping_two_nodes_never_removes_a_crossing():
    """A local optimum: no allowed swap of two nodes in a column (inputs and blocks keep their
    relative order) would remove a crossing."""
    from nasplay.report import layout

    for _, cell, reduction in published_cells():
        graph = cell_graph(cell, reduction=reduction)
        fixed = {k for k, n in graph.nodes.items() if n.kind in ("input", "combine")}
        columns, count = [list(c) for c in graph.columns], graph.crossings()
        for col in columns:
            for i in range(len(col)):
                for j in range(i + 1, len(col)):
                    pair, between = {col[i], col[j]}, set(col[i + 1:j])
                    if pair <= fixed or (pair & fixed and between & fixed):
                        continue                  # would reorder blocks: not allowed
                    col[i], col[j] = col[j], col[i]
                    assert layout.crossings(columns, graph.layout.segments) >= count
                    col[i], col[j] = col[j], col[i]


@pytest.mark.parametrize("space", ["nasnet", "amoebanet", "darts", "article"])
def test_layout_columns_follow_depth_and_blocks_run_in_order(space):
    from search_space.spaces import get_space

    rng = np.random.default_rng(7)
    for _ in range(10):
        cell = get_space(space).sample(rng).normal
        graph = cell_graph(cell)
        column = {key: x for x, col in enumerate(graph.columns) for key in col}
        depth = {}
        for i, block in enumerate(cell.blocks):      # longest path from the inputs, in blocks
            depth[i + 2] = 1 + max(depth.get(source, 0) for source in block.inputs)
            key = f"b{i}"
            assert column[key] == 2 * depth[i + 2]
            assert column[f"{key}_op0"] == column[f"{key}_op1"] == column[key] - 1
        for col in graph.columns:                    # blocks top to bottom in index order
            blocks = [k for k in col if k in graph.block_depth]
            assert blocks == sorted(blocks, key=lambda k: int(k[1:]))
            ys = [graph.layout.y[k] for k in blocks]
            assert ys == sorted(ys)
        assert graph.columns[0] == ["h0", "h1"] and graph.columns[-1] == ["out"]


def test_layout_keeps_boxes_apart_and_long_edges_level():
    from nasplay.report.layout import BOX_HALF, WAYPOINT_HALF

    levels = []
    for _, cell, reduction in published_cells():
        graph = cell_graph(cell, reduction=reduction)
        y, waypoints = graph.layout.y, graph.layout.waypoints
        for col in graph.columns:
            for a, b in zip(col, col[1:]):
                room = sum(WAYPOINT_HALF if k in waypoints else BOX_HALF for k in (a, b))
                assert y[b] - y[a] >= room - 1e-6
        for chain in graph.routes.values():          # level stretches of each long edge
            if len(chain) >= 2:
                levels.append(1 + sum(abs(y[a] - y[b]) > 1e-6 for a, b in zip(chain, chain[1:])))
    assert max(levels) <= 2 and levels.count(1) >= len(levels) / 2, levels


def test_legend_names_the_op_families_of_the_cell():
    from matplotlib.figure import Figure

    cell = load_genotype("amoebanet-a").reduction
    ax = Figure().subplots()
    draw_cell(ax, cell, reduction=True)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    families = {op_family(op) for block in cell.blocks for op in block.ops}
    assert labels == [FAMILY_NAMES[f] for f in FAMILY_NAMES if f in families] + ["/2: stride 2"]


def test_dot_keeps_the_layout_order_and_title():
    cell = load_genotype("darts-v2").normal
    graph = cell_graph(cell)
    text = cell_dot(cell, title='best "normal" cell (naswot 355.1)')
    assert 'label="best \\"normal\\" cell (naswot 355.1)"' in text
    for col in graph.columns:
        nodes = [k for k in col if k in graph.nodes]
        if len(nodes) > 1:
            assert "{ rank=same; " + "; ".join(nodes) + "; }" in text


# --- plots follow the run's score ---------------------------------------------------------------

def zero_cost_run(tmp_path, n=6):
    trials = fake_trials(n, seed=4, failed_every=0)
    for k, trial in enumerate(trials):
        trial["metrics"] = {"naswot": 300.0 + k, "params": 60_000 + 25_000 * k}
    return write_run(tmp_path / "zc", trials, config={"searcher": "random", "scorer": "zero-cost",
                                                       "metric": None})


def test_zero_cost_run_names_its_plot_and_axis_after_naswot(tmp_path, capsys):
    run_dir = zero_cost_run(tmp_path)
    code, out, _ = inspect(capsys, run_dir)
    assert code == 0
    report = run_dir / "report"
    assert_nontrivial_png(report / "naswot_vs_params.png")
    assert not list(report.glob("*accuracy*"))
    assert str(report / "naswot_vs_params.png") in out
    fig = plots.plot_score_vs_params(load_run(run_dir), tmp_path / "again.png")
    assert "NASWOT" in fig.axes[0].get_ylabel()
    assert "naswot" in (report / "best_normal.dot").read_text()


def test_colour_bar_ticks_trial_numbers_as_integers_and_params_as_k(tmp_path):
    run = load_run(zero_cost_run(tmp_path, n=3))          # 3 trials: default ticks are 1.25...
    fig = plots.plot_score_vs_params(run, tmp_path / "p.png")
    ax, bar = fig.axes
    low, high = bar.get_ylim()
    ticks = [t for t in bar.get_yticks() if low - 1e-9 <= t <= high + 1e-9]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(label.endswith("k") for label in labels), labels
    fig = plots.plot_progress(run, tmp_path / "q.png")
    assert all(float(t).is_integer() for t in fig.axes[0].get_xticks())


def test_params_axis_goes_log_with_readable_labels(tmp_path):
    trials = fake_trials(8, seed=2, failed_every=0)
    for k, trial in enumerate(trials):
        trial["metrics"]["params"] = 20_000 * 3 ** k            # 20k .. 43.7M
    run = load_run(write_run(tmp_path / "wide", trials))
    ax = plots.plot_score_vs_params(run, tmp_path / "p.png").axes[0]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert any(label.endswith("M") for label in labels) and any(label.endswith("k")
                                                                for label in labels)
    assert not any(len(label.rstrip("kMG")) > 4 for label in labels), labels


@pytest.mark.parametrize("n,text,trimmed", [(999, "999", "999"), (50_000, "50.0k", "50k"),
                                            (175_234, "175.2k", "175.2k"),
                                            (3_060_000, "3.1M", "3.1M"), (2e9, "2.0G", "2G")])
def test_human_count(n, text, trimmed):
    assert plots.human_count(n) == text and plots.human_count(n, trim=True) == trimmed


def test_file_names_follow_the_score():
    assert plots.params_figure_name("val_accuracy") == "val_accuracy_vs_params.png"
    assert plots.params_figure_name("oneshot_accuracy") == "oneshot_accuracy_vs_params.png"
    assert plots.params_figure_name("my/score") == "my_score_vs_params.png"
    assert plots.score_label("naswot") == "NASWOT score (naswot)"
    assert plots.score_label("custom") == "custom"


# --- one-shot runs: two scores ------------------------------------------------------------------

def oneshot_run(tmp_path, reranked=3):
    """A one-shot run whose best ``reranked`` trials were re-scored by the standalone proxy."""
    trials = fake_trials(10, seed=5, failed_every=5)
    completed = [t for t in trials if t["status"] == "completed"]
    for trial in completed:
        trial["metrics"]["oneshot_accuracy"] = trial["metrics"].pop("val_accuracy")
    best = sorted(completed, key=lambda t: -t["metrics"]["oneshot_accuracy"])[:reranked]
    for k, trial in enumerate(best):
        trial["metrics"]["val_accuracy"] = 0.3 + 0.05 * k     # the proxy disagrees on order
    config = {"searcher": "evolution", "scorer": "oneshot", "metric": "oneshot_accuracy"}
    return write_run(tmp_path / "os", trials, config=config)


def test_leaderboard_shows_both_scores_ranked_by_the_runs_metric(tmp_path, capsys):
    run_dir = oneshot_run(tmp_path)
    code, out, _ = inspect(capsys, run_dir, "--no-figures")
    assert code == 0
    header = next(line.split() for line in out.splitlines() if line.startswith("rank"))
    assert header[:4] == ["rank", "trial", "oneshot_accuracy", "val_accuracy"]
    rows = leaderboard_rows(out)
    oneshot = [float(row[2]) for row in rows]
    assert oneshot == sorted(oneshot, reverse=True) and len(rows) == 8
    assert [row[3] for row in rows[:3]] == ["0.3000", "0.3500", "0.4000"]
    assert all(row[3] == "-" for row in rows[3:])


def test_oneshot_run_plots_one_score_against_the_other(tmp_path, capsys):
    run_dir = oneshot_run(tmp_path)
    code, out, _ = inspect(capsys, run_dir)
    assert code == 0
    for name in ("oneshot_accuracy_vs_params.png", "oneshot_accuracy_vs_val_accuracy.png"):
        assert_nontrivial_png(run_dir / "report" / name)
        assert name in out
    fig = plots.plot_score_pair(load_run(run_dir), "val_accuracy", tmp_path / "pair.png")
    assert "Spearman -1.00" in fig.axes[0].get_title()    # the proxy reversed the top 3


def test_single_score_runs_get_no_second_column_or_pair_plot(run_dir, capsys):
    _, out, _ = inspect(capsys, run_dir)
    header = next(line.split() for line in out.splitlines() if line.startswith("rank"))
    assert header.count("val_accuracy") == 1 and "oneshot_accuracy" not in header
    assert sorted(p.name for p in (run_dir / "report").glob("*.png")) == sorted(FIGURES)


def test_spearman():
    assert plots.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert plots.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert plots.spearman([1, 2], [1, 2]) is None
    assert plots.spearman([1, 1, 1], [1, 2, 3]) is None
    # ranks (0, 1.5, 1.5, 3) and (0, 2, 1, 3): covariance 4.5, variances 4.5 and 5
    assert plots.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))


# --- edge genotypes (nb201): one cell, drawn as its DAG ------------------------------------------

NB201_CELL = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"


def test_nb201_run_draws_its_one_best_cell(tmp_path, capsys):
    trials = fake_trials(6, seed=2, space="nb201")
    run_dir = write_run(tmp_path / "nb201", trials,
                        config={"searcher": "random", "space": "nb201", "seed": 0})
    code, out, _ = inspect(capsys, run_dir)
    assert code == 0
    report = run_dir / "report"
    assert_nontrivial_png(report / "best_cell.png")
    assert not list(report.glob("best_normal*")) and "best_cell.dot" in out
    best = Genotype.from_dict(rundir.ranked(rundir.read_trials(run_dir))[0]["genotype"])
    text = (report / "best_cell.dot").read_text()
    assert text.startswith("digraph") and get_space("nb201").to_arch_str(best) in text
    assert text.count("->") == 6
    for source, target, op in best.edges():
        assert f'n{source} -> n{target} [label="{op}"' in text


def test_edge_cell_arrows_never_cross_and_labels_stay_apart():
    """Neighbours straight; the two span-2 edges on opposite sides; the longest arcs above, higher
    than the span-2 arc it encloses; every label at its own place."""
    from nasplay.report.diagrams import edge_arrows

    arrows = {(a.source, a.target): a for a in edge_arrows(load_genotype(NB201_CELL))}
    assert [arrows[(i, i + 1)].rad for i in range(3)] == [0.0, 0.0, 0.0]
    assert arrows[(0, 2)].rad * arrows[(1, 3)].rad < 0
    above = arrows[(0, 2)] if arrows[(0, 2)].rad < 0 else arrows[(1, 3)]
    assert arrows[(0, 3)].label_point()[1] > above.label_point()[1] > 0
    points = [a.label_point() for a in arrows.values()]
    assert len(set(points)) == 6


def test_edge_cell_legend_and_dot_say_none_is_dashed():
    from matplotlib.figure import Figure

    from nasplay.report.diagrams import draw_edge_cell, edge_cell_dot

    genotype = load_genotype(NB201_CELL)
    ax = Figure().subplots()
    draw_edge_cell(ax, genotype)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["convolution", "pooling", "identity", "none: zeros, no connection",
                      "node: sum of its incoming edges"]
    edge_labels = [t.get_text() for t in ax.texts if "_" in t.get_text() or t.get_text() == "none"]
    assert sorted(edge_labels) == sorted(op for _, _, op in genotype.edges())
    text = edge_cell_dot(genotype, title='best "cell"')
    assert 'label="best \\"cell\\""' in text
    dashed = [line for line in text.splitlines() if "style=dashed" in line]
    assert dashed == ['  n1 -> n2 [label="none", style=dashed, color="#999999", '
                      'fontcolor="#999999"];',
                      '  n2 -> n3 [label="none", style=dashed, color="#999999", '
                      'fontcolor="#999999"];']
    without_none = load_genotype(NB201_CELL.replace("none", "nor_conv_3x3"))
    ax = Figure().subplots()
    draw_edge_cell(ax, without_none)
    assert "none: zeros, no connection" not in [t.get_text() for t in ax.get_legend().get_texts()]


def test_a_rescored_runs_summary_names_its_best_rescored_trial(tmp_path, capsys):
    # the leaderboard stays by the run's metric; the summary says which trial the run's
    # best_genotype.json (and export, and train) took: the best by the re-scoring metric
    from nasplay.runs.records import rescore_record

    trials = fake_trials(6, seed=5, failed_every=0)
    for k, trial in enumerate(trials):
        trial["metrics"] = {"oneshot_accuracy": 0.1 + 0.01 * k}
    run_dir = write_run(tmp_path / "os", trials, config={"scorer": "oneshot",
                                                         "metric": "oneshot_accuracy"})
    writer = rundir.RunDir(run_dir)
    for trial, score in ((trials[-1], 0.378), (trials[-2], 0.411)):
        writer.append_trial(rescore_record(trial["trial_id"], "proxy", "val_accuracy",
                                           "completed", {"val_accuracy": score}))
    code, out, _ = inspect(capsys, run_dir, "--no-figures")
    assert code == 0
    assert (f"its best is {trials[-2]['trial_id']}, the best by val_accuracy of those "
            f"re-scored") in out
    assert leaderboard_rows(out)[0][1] == trials[-1]["trial_id"]
