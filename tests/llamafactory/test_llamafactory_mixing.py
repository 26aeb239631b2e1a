"""moemix's dynamic mixing inside LLaMA-Factory's own SFT run (`make llamafactory-test`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from workspace import ALPHABETS, NAMES, write_config

from moemix.errors import ConfigError
from moemix.integrations.llamafactory import main, mixing_installed, run_exp, split_config
from moemix.testing import StopAtStep

IGNORE_INDEX = -100


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def tokenised_rows(workspace, output_dir, **overrides):
    """The training rows LLaMA-Factory builds from the config, with moemix's tagging installed."""
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    args, mixing, names = split_config(yaml.safe_load(write_config(workspace, output_dir, **overrides).read_text()))
    with mixing_installed(names, mixing):
        model_args, data_args, training_args, _, _ = get_train_args(args)
        module = load_tokenizer(model_args)
        template = get_template_and_fix_tokenizer(module["tokenizer"], data_args)
        dataset = get_dataset(template, model_args, data_args, training_args, stage="sft", **module)
    return dataset["train_dataset"], module["tokenizer"]


@pytest.mark.parametrize("packing", [False, True])
def test_every_row_names_the_dataset_its_text_comes_from(workspace, tmp_path, packing):
    # Each dataset writes with its own characters; invalid examples of the first are dropped while tokenising,
    # and with packing several examples share a row: a row's label text must still come from its tagged dataset.
    rows, tokenizer = tokenised_rows(workspace, tmp_path / "rows", packing=packing, cutoff_len=256 if packing else 64)

    per_dataset = {name: 0 for name in NAMES}
    for row in rows:
        name = NAMES[row["moemix_dataset"]]
        labels = [t for t in row["labels"] if t != IGNORE_INDEX]
        text = tokenizer.decode(labels, skip_special_tokens=True).replace("\n", "")
        assert text and set(text) <= ALPHABETS[name], (name, text)
        per_dataset[name] += 1
    assert all(count > 0 for count in per_dataset.values())
    if packing:  # packing really packed: fewer rows than examples
        assert len(rows) < 24 + 16 + 20


@pytest.mark.parametrize("finetuning_type", ["full", "lora"])
def test_a_llamafactory_run_moves_the_weights_and_saves_the_mixture(workspace, tmp_path, finetuning_type):
    out = tmp_path / "run"
    config = write_config(workspace, out, finetuning_type=finetuning_type, learning_rate=1e-3)

    assert main(["train", str(config)]) == 0

    log = read_log(out / "mixture.jsonl")
    assert [r["step"] for r in log] == [2, 4, 6, 8]
    for record in log:
        assert sorted(record["weights"]) == sorted(NAMES)
        assert abs(sum(record["weights"].values()) - 1.0) < 1e-9
        assert not record.get("skipped")
    assert max(abs(w - 1 / 3) for w in log[-1]["weights"].values()) > 0.01  # the mixture moved
    state = json.loads((out / "mixture_state.json").read_text())
    assert sum(state["draws"].values()) == 8 * 4  # max_steps x (2 per device x 2 accumulation)
    assert state["weights"] == log[-1]["weights"]
    assert state["sampler"]["sizes"] == [24, 16, 20]  # the valid examples only: the 3 invalid ones are dropped


def test_a_resumed_run_equals_an_uninterrupted_one(workspace, tmp_path):
    common = {"save_strategy": "steps", "save_steps": 4, "learning_rate": 1e-3}
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    run_exp(yaml.safe_load(write_config(workspace, whole, **common).read_text()))
    run_exp(yaml.safe_load(write_config(workspace, parts, **common).read_text()), callbacks=[StopAtStep(4)])
    assert [r["step"] for r in read_log(parts / "mixture.jsonl")] == [2, 4]
    assert (parts / "checkpoint-4" / "moemix_state.json").is_file()

    resumed = write_config(
        workspace, parts, **common, resume_from_checkpoint=str(parts / "checkpoint-4"), overwrite_output_dir=False
    )
    run_exp(yaml.safe_load(resumed.read_text()))

    assert (whole / "mixture.jsonl").read_bytes() == (parts / "mixture.jsonl").read_bytes()
    a, b = load_file(whole / "model.safetensors"), load_file(parts / "model.safetensors")
    assert sorted(a) == sorted(b)
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_two_processes_train_as_one_with_the_same_global_batch(workspace, tmp_path):
    # 1 process x 2 micro-batches of 2 = 2 processes x 1 micro-batch of 2: the same draws every step, the routing
    # counts summed over ranks, so the same weights and (on the CPU, gloo) the same parameters.
    one, two = tmp_path / "one", tmp_path / "two"
    run_exp(yaml.safe_load(write_config(workspace, one, learning_rate=1e-3).read_text()))
    config = write_config(workspace, two, learning_rate=1e-3, gradient_accumulation_steps=1, ddp_backend="gloo")
    torchrun = Path(sys.executable).with_name("torchrun")
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "-m", "moemix.integrations.llamafactory", "train", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]

    assert (one / "mixture.jsonl").read_bytes() == (two / "mixture.jsonl").read_bytes()
    assert (
        json.loads((one / "mixture_state.json").read_text())["draws"]
        == json.loads((two / "mixture_state.json").read_text())["draws"]
    )
    a, b = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"moemix": {"etaa": 1.0}}, "moemix.etaa: unknown key"),
        ({"moemix": {"source": "probe"}}, "moemix.source: only online"),
        ({"moemix": {"policy": "odm"}}, "moemix.policy: 'odm' is not available"),
        ({"moemix": {"weights": {"words": 1.0}}}, "moemix.weights: no weight for dataset(s): numbers, symbols"),
        ({"mix_strategy": "interleave_under"}, "mix_strategy: 'interleave_under' pre-mixes"),
        ({"dataset": "words"}, "dataset: moemix mixes two or more datasets"),
        ({"stage": "dpo"}, "stage: moemix mixes the datasets of an sft run"),
    ],
)
def test_settings_mixing_cannot_use_are_refused_in_one_line(workspace, tmp_path, capsys, overrides, message):
    config = write_config(workspace, tmp_path / "bad", **overrides)

    assert main(["train", str(config)]) == 2

    err = capsys.readouterr().err.strip()
    assert err.startswith("moemix: error: ") and message in err and "\n" not in err
    with pytest.raises(ConfigError):
        split_config(yaml.safe_load(config.read_text()))
