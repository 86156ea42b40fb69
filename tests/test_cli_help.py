"""Every command line's --help: ``python -m NAME`` as the program, a one-line description,
a help text for every flag, the default of every flag that has one, and examples to copy.

Each CLI runs in-process; the parser that printed the help is caught on its way out, so its
actions tell which flags have a default to show."""

import argparse
import importlib

import pytest

# (the name after python -m, the module whose main() runs it, the subcommand if any)
ANALYSES = ("subsets", "rank", "rank-table", "pmi", "free-embedding")
CLIS = [
    ("set_env", "set_env.__main__", None),
    ("train", "train.__main__", None),
    ("train.sweep", "train.sweep", None),
    ("train.rl", "train.rl", None),
    ("eval", "eval.__main__", None),
    ("eval.report", "eval.report", None),
    ("eval.analysis", "eval.analysis", None),
    *[("eval.analysis", "eval.analysis", command) for command in ANALYSES],
    ("benchmarks.envs", "benchmarks.envs", None),
    ("benchmarks.train", "benchmarks.train", None),
    ("benchmarks.gpu", "benchmarks.gpu", None),
    ("benchmarks.rl", "benchmarks.rl", None),
]


def help_of(module: str, command: str | None, monkeypatch, capsys):
    """The text ``python -m ... --help`` prints, and the parser that printed it."""
    printed = []
    print_help = argparse.ArgumentParser.print_help

    def record(parser, file=None):
        printed.append(parser)
        print_help(parser, file)

    monkeypatch.setattr(argparse.ArgumentParser, "print_help", record)
    monkeypatch.setenv("COLUMNS", "100")  # the width argparse wraps the help at
    argv = [command, "--help"] if command else ["--help"]
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(argv)
    assert exit_info.value.code == 0
    (parser,) = printed
    return capsys.readouterr().out, parser


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (argparse's line wrapping) as one space."""
    return " ".join(text.split())


@pytest.mark.parametrize(
    "name, module, command", CLIS, ids=[" ".join(filter(None, cli[::2])) for cli in CLIS]
)
def test_help_shows_program_description_every_flag_default_and_examples(
    name, module, command, monkeypatch, capsys
):
    program = f"python -m {name}" + (f" {command}" if command else "")
    text, parser = help_of(module, command, monkeypatch, capsys)
    assert text.startswith(f"usage: {program} ")
    description = parser.description or ""
    assert description and "\n" not in description.strip() and description.endswith(".")
    assert description in text
    assert "``" not in text, "reST markup in a help text: plain text only"
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        shown = one_line(formatter._format_action(action))
        assert action.help and action.help.strip(), f"{shown}: no help text"
        if action.default is not None and action.default is not argparse.SUPPRESS:
            assert f"(default: {action.default})" in shown, f"{shown}: default not shown"
    examples = text.split("\nexamples:\n")
    assert len(examples) == 2, "no examples: section"
    assert any(line.strip().startswith(program) for line in examples[1].splitlines())
