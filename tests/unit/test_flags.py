"""The command line is strict: an unknown flag is one line naming the closest valid one, exit status 2;
settings' flags come from the config dataclasses, with their choices and help."""

from __future__ import annotations

import pytest

from moemix.cli import build_parser, main
from moemix.config import UpcycleConfig, field_docs

CONFIG = """\
datasets:
  - {name: a, path: "builtin:math", max_examples: 20}
  - {name: b, path: "builtin:code", max_examples: 20}
model: {tiny: mixtral, tokenizer: builtin}
"""


def _error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("moemix: error: "), err
    return err.removeprefix("moemix: error: ")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return str(path)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["export-weights", "RUN", "--fromat", "megatron"], "unknown flag --fromat; did you mean --format?"),
        (["export-weights", "RUN", "--averge"], "unknown flag --averge; did you mean --average?"),
        (["export-weights", "RUN", "--fromat=megatron"], "unknown flag --fromat; did you mean --format?"),
        (["report", "RUN", "--out", "x"], "unknown flag --out"),
        (["upcycle", "--model", "m", "--out", "o", "--expert", "4"], "unknown flag --expert; did you mean --experts?"),
        (["upcycle", "--model", "m", "--out", "o", "--mode", "merge"], "argument --mode: invalid choice: 'merge'"),
        (["upcycle", "--model", "m", "--out", "o", "--top-k", "x"], "--top-k: expected int, got str 'x'"),
        (
            ["upcycle", "--model", "m", "--out", "o", "--experts", "2", "--top-k", "3"],
            "--top-k: must be in [1, experts=2], got 3",
        ),
        (
            ["upcycle", "--model", "m", "--out", "o", "--layers", "first:2"],
            "--layers: must be 'all' or 'last:L' (L >= 1), got 'first:2'",
        ),
        (["upcycle", "--model", "m"], "the following arguments are required: --out"),
        (["upcycle", "--model", "m", "--out", "o", "extra"], "unexpected argument 'extra'"),
        (["replay", "RUN", "--et", "3"], "unknown flag --et; did you mean --eta?"),
        (["replay", "RUN", "--ceiling", "x"], "--ceiling: expected float"),
        (["demo", "--max-step", "3"], "unknown flag --max-step; did you mean --max-steps?"),
        (["eval", "RUN", "--task", "gsm8k"], "unknown flag --task; did you mean --tasks?"),
        (["nope"], "argument command: invalid choice: 'nope'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_unknown_or_bad_flags_are_one_line(capsys, argv, expected):
    assert expected in _error(capsys, argv)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["--fromat", "x"], "unknown flag --fromat"),
        (["--mixing.etta", "3"], "command-line override --mixing.etta: unknown key; did you mean --mixing.eta?"),
        (["--mixing.eta.x", "3"], "command-line override --mixing.eta.x: mixing.eta is a float setting, not a section"),
        (["--max_step", "3"], "unknown flag --max_step; did you mean --max_steps?"),
        (
            ["--training.learning_rate=abc"],
            "command-line override --training.learning_rate: expected float, got str 'abc'",
        ),
        (["stray"], "argument 'stray': expected --key value, --key=value or key=value"),
    ],
)
def test_train_checks_overrides_against_the_schema_before_reading_data(capsys, config, overrides, expected):
    # The data paths are builtin and the model tiny, but nothing is loaded: the flags fail first.
    assert expected in _error(capsys, ["train", config, *overrides])


def test_a_config_that_is_not_utf8_is_one_line(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(CONFIG.encode() + b"output_dir: caf\xe9\n")
    assert _error(capsys, ["train", str(path)]) == f"{path}:5: not UTF-8 text (byte 0xe9); save the file as UTF-8"


def test_upcycle_flags_are_the_dataclass_fields():
    parser = build_parser()
    up = parser.commands["upcycle"]
    actions = {a.dest: a for a in up._actions}
    for f in ("experts", "top_k", "layers", "mode", "seed", "router_std"):
        assert f in actions
        assert field_docs(UpcycleConfig)[f].replace("``", "").split(" (")[0][:30] in actions[f].help
    assert actions["mode"].choices == ("copy", "split")
    help_text = up.format_help()
    assert "--mode {copy,split}" in help_text and "(default: 8)" in help_text


def test_choices_show_in_help():
    parser = build_parser()
    replay = parser.commands["replay"].format_help()
    assert "--policy {dynamic,refloss,odm}" in replay and "--distance {l2,cosine,js}" in replay


def test_train_help_lists_the_common_training_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("--learning_rate", "--per_device_train_batch_size", "--save_strategy", "--report_to", "--deepspeed"):
        assert name in out
    assert "huggingface.co/docs/transformers/main_classes/trainer" in out
    assert "(moemix default: none)" in out  # report_to: runs stay offline unless asked
