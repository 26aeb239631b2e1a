"""TrainingArguments are built from a loaded config before any data or model loads, and checked."""

from __future__ import annotations

import pytest
from transformers import TrainingArguments

from moemix.config import load_config
from moemix.errors import ConfigError
from moemix.train.arguments import TRAINING_DEFAULTS, training_arguments

BASE = """\
datasets: [{name: a, path: a.jsonl}, {name: b, path: b.jsonl}]
model: {tiny: mixtral, tokenizer: builtin}
output_dir: runs/x
seed: 7
"""


def test_typed_values_reach_training_arguments():
    config = load_config(text=BASE + "training: {learning_rate: 2e-5, save_strategy: no, bf16: off, max_steps: 1e3}")
    args = training_arguments(config)
    assert isinstance(args, TrainingArguments)
    assert args.learning_rate == 2e-5 and args.save_strategy == "no" and args.bf16 is False and args.max_steps == 1000
    assert args.output_dir == "runs/x" and args.seed == 7
    assert args.remove_unused_columns is TRAINING_DEFAULTS["remove_unused_columns"] is False
    assert args.report_to == []  # "none": runs report nowhere unless asked


def test_the_run_module_keeps_the_old_names():
    from moemix.train import run

    assert run.training_arguments is training_arguments and run.TRAINING_DEFAULTS is TRAINING_DEFAULTS


@pytest.mark.parametrize(
    ("training", "overrides", "expected"),
    [
        (
            "{load_best_model_at_end: true, save_strategy: steps}",
            [],
            "<config>:5: training.load_best_model_at_end: "
            "--load_best_model_at_end requires the save and eval strategy to match",
        ),
        (
            "{}",
            ["--lr_scheduler_type=reduce_lr_on_plateau"],
            "command-line override --lr_scheduler_type: "
            "lr_scheduler_type reduce_lr_on_plateau requires an eval strategy",
        ),
    ],
)
def test_combinations_transformers_rejects_name_the_field_and_place(training, overrides, expected):
    config = load_config(text=BASE + f"training: {training}", overrides=overrides)
    with pytest.raises(ConfigError) as info:
        training_arguments(config)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("training", "overrides", "place"),
    [
        ("{max_steps: 0}", [], "<config>:5: training.max_steps"),
        ("{}", ["--max_steps=0"], "command-line override --max_steps"),
    ],
)
def test_zero_steps_is_refused_rather_than_read_as_no_limit(training, overrides, place):
    with pytest.raises(ConfigError, match="max_steps 0 trains nothing") as info:  # refused as the config loads
        training_arguments(load_config(text=BASE + f"training: {training}", overrides=overrides))
    assert str(info.value).startswith(place)
