"""`lvu-ext --help` lists one command per line with its sentence; `lvu-ext bench --help` names
every mode; a missing or unknown command is a usage error (exit 2)."""

import re

import pytest

from lmms_eval_plugin.bench import cli as bench_cli
from lmms_eval_plugin.cli import SUBCOMMANDS, main


def _help(entry, argv, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        entry(argv)
    assert stop.value.code == 0
    return capsys.readouterr().out


def test_lvu_ext_help_lists_one_command_per_line(capsys):
    out = _help(main, ["--help"], capsys)
    for name, (_, sentence) in SUBCOMMANDS.items():
        assert re.search(rf"^  {re.escape(name)} +{re.escape(sentence)}$", out, re.M), f"{name} not on a line of its own:\n{out}"


def test_no_command_or_an_unknown_one_exits_2(capsys):
    assert main([]) == 2
    assert "commands:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["no-such-command"])
    assert stop.value.code == 2 and "invalid choice: 'no-such-command'" in capsys.readouterr().err


def test_bench_help_names_every_mode(capsys):
    out = _help(bench_cli.main, ["--help"], capsys)
    assert re.search(rf"^  \(none\) +{re.escape(bench_cli.DEFAULT_MODE)}$", out, re.M), out
    for flag in ("--workload", "--decode", "--gpu-suite"):
        assert re.search(rf"^  {flag} +{re.escape(bench_cli.MODES[flag][1])}$", out, re.M), f"{flag} not named:\n{out}"


@pytest.mark.parametrize("flag", ["--workload", "--decode", "--gpu-suite"])
def test_each_mode_has_its_own_help(flag, capsys):
    out = _help(bench_cli.main, [flag, "--help"], capsys)
    assert out.startswith(f"usage: lvu-ext bench {flag}"), out[:200]
