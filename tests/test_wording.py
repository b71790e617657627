"""Messages agree with their counts: ``1 epoch``, ``2 epochs`` (never ``1 epochs``)."""

from __future__ import annotations

import re
from pathlib import Path

from nasplay.errors import plural

REPO = Path(__file__).resolve().parents[1]
# an f-string that puts a count before a plural noun: it says "1 epochs" when the count is 1
COUNT_THEN_PLURAL = re.compile(r"\{[^{}]*\} (epochs|trials|candidates|images)\b")


def test_plural_agrees_with_the_count():
    assert plural(1, "epoch") == "1 epoch"
    assert plural(0, "epoch") == "0 epochs"
    assert plural(6, "trial") == "6 trials"
    assert plural(2, "child", "children") == "2 children"


def test_no_message_puts_a_bare_count_before_a_plural_noun():
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for path in sorted((REPO / "nasplay").rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), start=1)
             if COUNT_THEN_PLURAL.search(line) and not line.lstrip().startswith("#")]
    assert found == []


class _Done:
    """A child process that trains nothing and succeeds."""

    exitcode = 0

    def __init__(self, **_):
        pass

    def start(self):
        pass

    def join(self):
        pass


class _Context:
    Process = _Done


def test_the_supernet_line_says_1_epoch(tmp_path, monkeypatch, capsys):
    from nasplay.engine.config import SearchConfig
    from nasplay.runs.rundir import RunDir
    from nasplay.scorers.oneshot import scorer as oneshot

    monkeypatch.setattr(oneshot.multiprocessing, "get_context", lambda _: _Context())
    config = SearchConfig(searcher="random", space="nasnet", trials=2, scorer="oneshot",
                          run_dir=str(tmp_path / "run"))
    options = {"epochs": 1, "space": "nasnet", "run_dir": str(tmp_path / "run")}
    oneshot._prepare(config, RunDir(tmp_path / "run"), options)
    out = capsys.readouterr().out
    assert "(1 epoch;" in out and "epochs" not in out
    grown = {**options, "shallow_epochs": 1, "epochs": 2, "cells_per_stage": 5}
    oneshot._prepare(config, RunDir(tmp_path / "run"), grown)
    assert "(1 epoch at 1 cell a stage, then 2 epochs grown to 5;" in capsys.readouterr().out


def test_the_one_shot_search_says_the_first_candidate_loads_the_supernet(tmp_path, monkeypatch,
                                                                          capsys):
    # trained here or reused (--supernet DIR): either way one line before the first trial
    from nasplay.engine.config import SearchConfig
    from nasplay.runs.rundir import RunDir
    from nasplay.scorers.oneshot import scorer as oneshot

    monkeypatch.setattr(oneshot.multiprocessing, "get_context", lambda _: _Context())
    config = SearchConfig(searcher="random", space="nasnet", trials=2, scorer="oneshot",
                          run_dir=str(tmp_path / "run"))
    for options in ({"epochs": 2, "space": "nasnet", "run_dir": str(tmp_path / "run")},
                    {"supernet": str(tmp_path), "space": "nasnet"}):
        oneshot._prepare(config, RunDir(tmp_path / "run"), options)
        last = capsys.readouterr().out.splitlines()[-1]
        assert "first candidate" in last and "loads the supernet and traces its graph" in last
        assert "minutes on a CPU" in last
