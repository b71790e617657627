"""A scorer owns its settings: it declares its options once (``nasplay.scorers.Option``), the CLI
builds its flag group from them, the plan resolves them into ``scorer_options``, and nothing
outside the scorer's package names them. Runs saved before (a scorer's flags at the top level of
``config.json``) still resume as they were."""

from __future__ import annotations

import ast
import dataclasses
import json
from dataclasses import dataclass

import pytest

from conftest import REPO
from nasplay.cli import dispatch as cli
from nasplay.cli.search import config_from_args
from nasplay.engine.config import SearchConfig
from nasplay.engine.plan import make_plan
from nasplay.errors import UserError
from nasplay.runs.rundir import RunDir
from nasplay.scorers import SCORERS, Option, Scorer, option_flags, register_scorer


def _search_parser():
    parser = cli.build_parser()
    return parser._subparsers._group_actions[0].choices["search"]


def _config(argv) -> SearchConfig:
    return config_from_args(cli.build_parser().parse_args(["search", *argv]))[0]


def test_search_help_has_a_flag_group_per_scorer_from_its_options():
    text = " ".join(_search_parser().format_help().split())   # unwrapped
    for scorer in SCORERS.values():
        if not scorer.options:
            continue
        group = text.index(f"--scorer {scorer.name}:")
        for option in scorer.options:
            assert option.cli in text, option.cli
        if scorer.name == "oneshot":  # its own flags sit in its group, with their defaults
            assert text.index("--supernet-epochs E", group) > group
            assert "supernet training epochs (default: 6; 2 on nb201 (CPU))" in text
            assert "(default: 0; 25 on nb201 (CPU))" in text
    assert "training images per candidate (default: 2000; 20000 with GPU trials" in text


def test_a_registered_scorer_gets_its_flags_and_settings(registries, tmp_path):
    @dataclass(frozen=True)
    class WidthSettings:
        filters: int = 8

    register_scorer(Scorer(name="width", metric="neg_width", seed_fields=(),
                           score=lambda genotype, ctx: {"neg_width": -ctx.options["filters"]},
                           defaults=lambda gpu: WidthSettings(),
                           options=(Option("width_of_net", "the width", field="filters",
                                           minimum=2),)))
    assert "--width-of-net N" in _search_parser().format_help()
    argv = ["--searcher", "random", "--space", "amoebanet", "--trials", "2", "--scorer", "width",
            "--run-dir", str(tmp_path / "r")]
    config = _config([*argv, "--width-of-net", "4"])
    assert config.scorer_flags == {"width_of_net": 4}
    plan = make_plan(config)
    assert plan.options == {"filters": 4} and plan.config.scorer_options == {"filters": 4}
    assert plan.config.scorer_flags == {}        # config.json holds fields, not flags
    with pytest.raises(UserError, match="width_of_net must be an integer >= 2"):
        make_plan(_config([*argv, "--width-of-net", "1"]))
    with pytest.raises(UserError, match=r"--subset does not apply to the width scorer \(it "
                                        r"takes --width-of-net\)"):
        make_plan(_config([*argv, "--subset", "100"]))


def test_a_flag_wins_over_the_field_a_config_file_sets(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"scorer_options": {"filters": 6, "batch_size": 16}}))
    config = _config(["--searcher", "random", "--space", "amoebanet", "--trials", "2",
                      "--scorer", "zero-cost", "--run-dir", str(tmp_path / "r"),
                      "--config", str(path), "--filters", "4"])
    options = make_plan(config).config.scorer_options
    assert (options["filters"], options["batch_size"]) == (4, 16)


def test_repeats_is_a_proxy_setting_saved_with_the_run_and_one_for_older_runs(tmp_path):
    from nasplay.scorers.settings import resolve

    config = _config(["--searcher", "random", "--space", "nb201", "--trials", "2",
                      "--run-dir", str(tmp_path / "r"), "--repeats", "2"])
    resolved, options = resolve(SCORERS["proxy"], config)
    assert resolved.scorer_options["repeats"] == options["repeats"] == 2
    assert SCORERS["proxy"].added_since["repeats"] == 1   # a run saved before trained once


def test_size_prior_is_a_proxy_setting_saved_with_the_run_and_zero_for_older_runs(tmp_path):
    from nasplay.scorers.settings import resolve

    config = _config(["--searcher", "random", "--space", "nb201", "--trials", "2",
                      "--run-dir", str(tmp_path / "r"), "--size-prior", "0.05",
                      "--metric", "sized_neg_val_loss"])
    resolved, options = resolve(SCORERS["proxy"], config)
    assert resolved.scorer_options["size_prior"] == options["size_prior"] == 0.05
    assert SCORERS["proxy"].added_since["size_prior"] == 0.0  # a run saved before: the loss


def test_nb201_runs_get_the_proxy_budget_measured_on_its_cells(tmp_path):
    """A new nb201 search on CPUs trains NAS-Bench-201's own depth on 10,000 images; a flag
    still wins, GPU trials keep the GPU defaults, other spaces the CPU defaults."""
    from nasplay.scorers.proxy.scorer import NB201_CPU
    from nasplay.scorers.proxy.training import ProxyConfig
    from nasplay.scorers.settings import resolve

    def options(space, *argv):
        config = _config(["--searcher", "random", "--space", space, "--trials", "2",
                          "--run-dir", str(tmp_path / "r"), *argv])
        return resolve(SCORERS["proxy"], config)[1]

    nb201 = options("nb201")
    assert {k: nb201[k] for k in NB201_CPU} == NB201_CPU == {
        "filters": 8, "cells_per_stage": 5, "epochs": 1, "train_size": 10000, "val_size": 2000}
    assert options("nb201", "--epochs", "2")["epochs"] == 2
    assert options("nb201", "--epochs", "2")["train_size"] == 10000
    cpu, gpu = ProxyConfig(), ProxyConfig.for_gpu()
    assert options("nasnet")["cells_per_stage"] == cpu.cells_per_stage == 1
    assert options("nasnet")["train_size"] == cpu.train_size
    assert options("nb201", "--gpus-per-trial", "1")["train_size"] == gpu.train_size


def test_nb201_oneshot_runs_get_the_grown_supernet_measured_on_its_cells(tmp_path):
    """A new nb201 one-shot search grows a supernet of the table's depth from a one-cell one
    (the settings that ranked the table's cells at Kendall 0.56); a flag still wins, and other
    spaces keep the CPU defaults, which train at their depth from the start."""
    from nasplay.scorers.oneshot.scorer import NB201_CPU
    from nasplay.scorers.oneshot.supernet import OneShotConfig
    from nasplay.scorers.settings import resolve

    def options(space, *argv):
        config = _config(["--searcher", "random", "--space", space, "--trials", "2",
                          "--scorer", "oneshot", "--run-dir", str(tmp_path / "r"), *argv])
        return resolve(SCORERS["oneshot"], config)[1]

    nb201 = options("nb201")
    assert {k: nb201[k] for k in NB201_CPU} == NB201_CPU
    assert (nb201["cells_per_stage"], nb201["shallow_epochs"], nb201["epochs"]) == (5, 25, 2)
    assert options("nb201", "--shallow-epochs", "10")["shallow_epochs"] == 10
    assert options("nb201", "--shallow-epochs", "0")["cells_per_stage"] == 5
    assert options("amoebanet")["shallow_epochs"] == OneShotConfig().shallow_epochs == 0
    assert SCORERS["oneshot"].added_since["shallow_epochs"] == 0  # a run saved before: as it was


def test_search_help_names_a_space_default():
    text = " ".join(_search_parser().format_help().split())
    assert "(default: 2000; 20000 with GPU trials; 10000 on nb201 (CPU))" in text


def _old_layout(config: SearchConfig) -> dict:
    """A resolved config as runs before scorers owned their settings saved it: the scorer's
    flags at the top level (null where it took none), the other fields in scorer_options."""
    saved = config.to_dict()
    options = dict(saved.pop("scorer_options"))
    del saved["scorer_flags"]
    top = {"subset": None, "epochs": None, "supernet_epochs": None, "sampler": None,
           "supernet": None, "finetune_steps": None,
           "filters": options.pop("filters"), "cells_per_stage": options.pop("cells_per_stage")}
    return {**saved, **top, "scorer_options": options}


def test_a_run_saved_in_the_older_layout_resumes_as_it_was(tmp_path):
    run_dir = tmp_path / "old"
    new = make_plan(SearchConfig(searcher="random", space="amoebanet", trials=3,
                                 scorer="zero-cost", scorer_flags={"filters": 4},
                                 run_dir=str(run_dir))).config
    RunDir(run_dir).path.mkdir()
    (run_dir / "config.json").write_text(json.dumps(_old_layout(new)))
    loaded = SearchConfig.load(run_dir / "config.json")
    assert loaded.scorer_flags == {"filters": 4, "cells_per_stage": 1}   # the nulls dropped
    resumed = make_plan(dataclasses.replace(new, trials=5), resume=True,
                        explicit={"run_dir", "trials"})
    assert resumed.config.scorer_options == new.scorer_options
    assert resumed.config.trials == 5
    with pytest.raises(UserError, match=r"another experiment \(filters is 4 there, 6 here\)"):
        make_plan(dataclasses.replace(new, scorer_flags={"filters": 6}), resume=True,
                  explicit={"run_dir", "scorer_flags"})


def test_asha_asks_the_scorer_for_its_rungs():
    assert SCORERS["proxy"].rungs({"epochs": 4}) == 4
    assert SCORERS["proxy"].rungs({"epochs": 4, "repeats": 1}) == 4
    with pytest.raises(UserError, match="--repeats 3 scores it by the mean of 3 whole"):
        SCORERS["proxy"].rungs({"epochs": 4, "repeats": 3})
    assert SCORERS["zero-cost"].rungs is None and not SCORERS["zero-cost"].trains


def test_no_scorer_option_is_named_outside_the_scorers():
    """The engine and the search command take every scorer setting from the declarations: no
    flag or field name of a scorer's options is spelled there."""
    names = {name for option in option_flags().values() for name in (option.flag,
                                                                        option.target)}
    where = [*sorted((REPO / "nasplay" / "engine").glob("*.py")),
             REPO / "nasplay" / "cli" / "search.py"]
    found = []
    for path in where:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names or \
                    isinstance(node, ast.Attribute) and node.attr in names:
                found.append(f"{path.name}:{node.lineno}")
    assert names >= {"subset", "supernet_epochs", "finetune_steps"} and found == []
