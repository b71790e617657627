"""README's laptop-hour command is the benchmark's recipe: the hour BENCHMARKS.md measures
(``python -m benchmarks.nb201_hour run --recipe deep-sized``) is the one a reader types,
setting for setting, and ``nasplay search`` accepts it."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

from benchmarks.nb201_hour import RECIPES
from nasplay.cli.search import add_arguments, config_from_args

README = Path(__file__).resolve().parents[1] / "README.md"
RECIPE = "deep-sized"


def _hour_section() -> str:
    text = README.read_text()
    start = text.index("## One laptop hour on NAS-Bench-201")
    return text[start:text.index("\n## ", start + 1)]


def _config(argv: list[str]):
    """The SearchConfig ``nasplay search argv`` describes (flags over ``--config``)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config, _ = config_from_args(parser.parse_args(argv))
    config.check()
    return config


def test_the_readme_hour_is_the_benchmarked_recipe(tmp_path, monkeypatch):
    section = _hour_section()
    hour_json = re.search(r"cat > hour\.json <<'EOF'\n(.*?)\n\s*EOF\n", section, re.S).group(1)
    command = re.search(r"nasplay search (--space nb201.*?)\n\s*nasplay inspect", section,
                        re.S).group(1).replace("\\\n", " ")
    monkeypatch.chdir(tmp_path)
    Path("hour.json").write_text(hour_json)
    readme = _config(shlex.split(command))
    assert (readme.data, readme.run_dir) == ("cifar10", "runs/hour")
    assert (readme.rerank_scorer, readme.rerank_metric, readme.trials) == \
        ("synflow", "params", 90)

    recipe = RECIPES[RECIPE]
    Path("recipe.json").write_text(json.dumps(recipe["config"]))
    benchmarked = _config(["--space", "nb201", *recipe["argv"], "--config", "recipe.json",
                           "--data", "cifar10", "--run-dir", "runs/hour"])
    assert readme.to_dict() == benchmarked.to_dict()
