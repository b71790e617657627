"""``nasplay --help`` and each command's: plain text (no reStructuredText backticks), and every
example command whole on one line, so it copies and pastes whatever the terminal's width."""

from __future__ import annotations

import pytest

from nasplay.cli import dispatch as cli


def help_text(argv, monkeypatch, capsys, columns=60) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [None, *cli.SUBCOMMANDS])
def test_help_is_plain_and_its_examples_stay_whole(command, monkeypatch, capsys):
    text = help_text([command] if command else [], monkeypatch, capsys)
    assert "``" not in text
    lines = [line.strip() for line in text.splitlines()]
    examples = ([example for _, _, example in cli.SUBCOMMANDS.values()] if command is None
                else [cli.SUBCOMMANDS[command][2]])
    for example in examples:
        assert any(line.endswith(example) for line in lines), (example, text)
