"""Values mean what a Hugging Face user means: YAML 1.2 scalars, each converted to its field's declared type,
and a value that does not fit names the field, the type or rule, and where it came from."""

from __future__ import annotations

import pytest

from moemix.config import dump_config, load_config
from moemix.errors import ConfigError

BASE = """\
datasets:
  - {name: a, path: a.jsonl}
  - {name: b, path: b.jsonl}
model: {tiny: mixtral, tokenizer: builtin}
"""


def _file(tmp_path, extra: str = "") -> str:
    path = tmp_path / "c.yaml"
    path.write_text(BASE + extra, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("extra", "field", "expected"),
    [
        ("training: {learning_rate: 2e-5}", "learning_rate", 2e-5),
        ("training: {learning_rate: 1e3}", "learning_rate", 1000.0),
        ("training: {learning_rate: 0.001}", "learning_rate", 0.001),
        ("training: {save_strategy: no}", "save_strategy", "no"),
        ("training: {save_strategy: 'steps'}", "save_strategy", "steps"),
        ("training: {bf16: off}", "bf16", False),
        ("training: {bf16: on}", "bf16", True),
        ("training: {bf16: yes}", "bf16", True),
        ("training: {bf16: no}", "bf16", False),
        ("training: {max_steps: 1e3}", "max_steps", 1000),
        ("training: {warmup_steps: 10}", "warmup_steps", 10),
        ("training: {report_to: [tensorboard, wandb]}", "report_to", ["tensorboard", "wandb"]),
        ("training: {lr_scheduler_kwargs: {num_cycles: 2}}", "lr_scheduler_kwargs", {"num_cycles": 2}),
        ("training: {run_name: null}", "run_name", None),
        ("training: {resume_from_checkpoint: true}", "resume_from_checkpoint", True),
    ],
)
def test_training_values_from_a_file(tmp_path, extra, field, expected):
    value = load_config(_file(tmp_path, extra)).training[field]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("override", "field", "expected"),
    [
        ("--training.learning_rate=2e-5", "learning_rate", 2e-5),
        ("--learning_rate=1e3", "learning_rate", 1000.0),
        ("--training.save_strategy=no", "save_strategy", "no"),
        ("--save_strategy=off", "save_strategy", "off"),  # a choice field: checked below, not a boolean
        ("--training.bf16=off", "bf16", False),
        ("--bf16=yes", "bf16", True),
        ("--max_steps=20", "max_steps", 20),
        ("--training.run_name=null", "run_name", None),
        ("--training.run_name=007", "run_name", "007"),
        ("--report_to=[tensorboard]", "report_to", ["tensorboard"]),
    ],
)
def test_training_values_from_overrides(tmp_path, override, field, expected):
    if override == "--save_strategy=off":
        with pytest.raises(
            ConfigError, match="command-line override --save_strategy: must be one of no, steps, epoch, best, got 'off'"
        ):
            load_config(_file(tmp_path), [override])
        return
    value = load_config(_file(tmp_path), [override]).training[field]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("extra", "overrides", "check"),
    [
        ("mixing: {eta: 1e1}", [], lambda c: c.mixing.eta == 10.0 and type(c.mixing.eta) is float),
        ("mixing: {eta: 5}", [], lambda c: c.mixing.eta == 5.0 and type(c.mixing.eta) is float),
        (
            "mixing: {freeze_router: yes, count_prompt_tokens: off}",
            [],
            lambda c: c.mixing.freeze_router and not c.mixing.count_prompt_tokens,
        ),
        ("", ["--mixing.freeze_router", "on"], lambda c: c.mixing.freeze_router is True),
        ("", ["--mixing.eta=2e-1"], lambda c: c.mixing.eta == 0.2),
        ("", ["--mixing.layers", "1"], lambda c: c.mixing.layers == 1),
        ("", ["--mixing.layers", "all"], lambda c: c.mixing.layers == "all"),
        ("", ["--mixing.layers", "[0, -1]"], lambda c: c.mixing.layers == [0, -1]),
        ("", ["--mixing.weights", "{a: 0.25, b: 0.75}"], lambda c: c.mixing.weights == {"a": 0.25, "b": 0.75}),
        ("", ["--datasets.0.name", "no"], lambda c: c.datasets[0].name == "no"),  # text stays text
        ("", ["--datasets.0.name", "0123"], lambda c: c.datasets[0].name == "0123"),
        ("", ["--datasets.1.dev_size", "0.1"], lambda c: c.datasets[1].dev_size == 0.1),
        (
            "",
            ["--datasets.1.dev_size", "20"],
            lambda c: c.datasets[1].dev_size == 20 and type(c.datasets[1].dev_size) is int,
        ),
        (
            "",
            ["--model.upcycle=null", "--eval_batches=null"],
            lambda c: c.model.upcycle is None and c.eval_batches is None,
        ),
        ("max_length: 1e3", [], lambda c: c.max_length == 1000),
        (
            "datasets:\n  - {name: yes, path: a.jsonl}\n  - {name: off, path: b.jsonl}\n",
            [],
            lambda c: [d.name for d in c.datasets] == ["yes", "off"],
        ),
    ],
)
def test_moemix_values(tmp_path, extra, overrides, check):
    text = BASE + extra if not extra.startswith("datasets:") else extra + "model: {tiny: mixtral, tokenizer: builtin}\n"
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    assert check(load_config(path, overrides))


@pytest.mark.parametrize(
    ("extra", "overrides", "expected"),
    [
        ("training: {learning_rate: abc}", [], ":5: training.learning_rate: expected float, got str 'abc'"),
        (
            "training: {per_device_train_batch_size: 0}",
            [],
            ":5: training.per_device_train_batch_size: must be >= 1, got 0",
        ),
        (
            "training: {save_strategy: nope}",
            [],
            ":5: training.save_strategy: must be one of no, steps, epoch, best, got 'nope'",
        ),
        (
            "training: {bf16: maybe}",
            [],
            ":5: training.bf16: expected bool (true/false, yes/no, on/off, 1/0), got str 'maybe'",
        ),
        (
            "training: {remove_unused_columns: true}",
            [],
            ":5: training.remove_unused_columns: must be false (batches carry dataset ids)",
        ),
        ("training: {max_stepz: 3}", [], ":5: training.max_stepz: unknown key; did you mean 'max_steps'?"),
        ("mixing: {eta: .nan}", [], ":5: mixing.eta: must be >= 0, got nan"),
        ("mixing: {eta: abc}", [], ":5: mixing.eta: expected float (a number such as 0.1 or 2e-5), got str 'abc'"),
        (
            "mixing: {policy: dynamics}",
            [],
            ":5: mixing.policy: must be one of uniform, static, datasize, random, cycle, sequential, dynamic, "
            "embedding, refloss, odm, got 'dynamics'; did you mean 'dynamic'?",
        ),
        ("mixing: {etta: 3}", [], ":5: mixing.etta: unknown key; did you mean 'eta'?"),
        ("mixing: {eta: 1, eta: 2}", [], ":5: mixing.eta: key given twice"),
        ("max_length: 10.5", [], ":5: max_length: expected int, got float 10.5"),
        (
            "",
            ["--training.learning_rate=abc"],
            "command-line override --training.learning_rate: expected float, got str 'abc'",
        ),
        ("", ["--learning_rate", "abc"], "command-line override --learning_rate: expected float, got str 'abc'"),
        (
            "",
            ["--per_device_train_batch_size=0"],
            "command-line override --per_device_train_batch_size: must be >= 1, got 0",
        ),
        (
            "",
            ["--training.save_strategy", "nope"],
            "command-line override --training.save_strategy: must be one of no, steps, epoch, best",
        ),
        (
            "",
            ["--mixing.eta.x", "3"],
            "command-line override --mixing.eta.x: mixing.eta is a float setting, not a section",
        ),
        (
            "mixing: {eta: 3}",
            ["--mixing.eta.x", "3"],
            "command-line override --mixing.eta.x: mixing.eta is a float setting",
        ),
        (
            "",
            ["--training.max_steps.x", "3"],
            "command-line override --training.max_steps.x: training.max_steps is a setting, not a section",
        ),
        ("", ["--mixing.etta", "3"], "command-line override --mixing.etta: unknown key; did you mean --mixing.eta?"),
        (
            "",
            ["--training.learning_rat", "3"],
            "command-line override --training.learning_rat: unknown key; did you mean --training.learning_rate?",
        ),
        ("", ["--max_step", "3"], "unknown flag --max_step; did you mean --max_steps?"),
        ("", ["--datasets.5.name", "x"], "command-line override --datasets.5.name: no list item 5 under datasets"),
        (
            "",
            ["--datasets.x.name", "x"],
            "command-line override --datasets.x.name: datasets is a list; name an item by its index, e.g. --datasets.0",
        ),
        ("", ["--model.upcycle.experts", "0"], "command-line override --model.upcycle.experts: must be >= 1, got 0"),
    ],
)
def test_bad_values_name_field_rule_and_place(tmp_path, extra, overrides, expected):
    path = _file(tmp_path, extra)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}{expected}") if expected.startswith(":") else expected in message, message


def test_a_file_with_bytes_that_are_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(BASE.encode() + b"output_dir: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:5: not UTF-8 text (byte 0xe9); save the file as UTF-8"


def test_the_resolved_config_reads_back_equal(tmp_path):
    overrides = ["--learning_rate=2e-5", "--save_strategy=no", "--bf16=off", "--datasets.0.name=no", "--mixing.eta=1e1"]
    config = load_config(_file(tmp_path), overrides)
    assert load_config(text=dump_config(config)) == config


def test_a_problem_inside_a_list_setting_is_named_by_its_item(tmp_path):
    with pytest.raises(ConfigError, match=r":5: mixing.layers.1: expected int, got str 'x'"):
        load_config(_file(tmp_path, "mixing: {layers: [0, x]}"))
