"""Every file under configs/ builds into what a run would use, without training: run configs into a loaded
config and its TrainingArguments, DeepSpeed JSON into the Trainer's DeepSpeed config, accelerate YAML through
accelerate's own loader. configs/demo.yaml is the embedded default."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from moemix.config import load_config
from moemix.train.arguments import training_arguments

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ACCELERATE = sorted((CONFIGS / "accelerate").glob("*.yaml"))
DEEPSPEED = sorted((CONFIGS / "deepspeed").glob("*.json"))
RUNS = sorted(p for p in CONFIGS.rglob("*.yaml") if p not in ACCELERATE)


def _name(path: Path) -> str:
    return str(path.relative_to(CONFIGS))


def test_every_shipped_file_is_built_here():
    shipped = {p for p in CONFIGS.rglob("*") if p.is_file()}
    assert shipped == set(RUNS) | set(ACCELERATE) | set(DEEPSPEED), "a file under configs/ that no test builds"
    assert RUNS and ACCELERATE and DEEPSPEED


@pytest.mark.parametrize("path", RUNS, ids=_name)
def test_run_config_builds_its_training_arguments(path, tmp_path):
    config = load_config(path, [f"--output_dir={tmp_path / 'run'}"])
    assert len(config.datasets) >= 2 and len({d.name for d in config.datasets}) == len(config.datasets)

    args = training_arguments(config)

    assert args.output_dir == str(tmp_path / "run") and args.seed == config.seed
    assert config.training, f"{path.name} sets no training option"
    for key, value in config.training.items():  # each option reaches the Trainer as written
        assert getattr(args, key) == value, key


@pytest.mark.deepspeed
@pytest.mark.parametrize("path", DEEPSPEED, ids=_name)
def test_deepspeed_config_builds_with_a_run_config(path, tmp_path):
    pytest.importorskip("deepspeed")
    config = load_config(CONFIGS / "demo_tiny.yaml", [f"--output_dir={tmp_path}", f"--deepspeed={path}"])

    args = training_arguments(config)

    written = json.loads(path.read_text())
    deepspeed = args.hf_deepspeed_config
    stage = written["zero_optimization"]["stage"]
    assert deepspeed.config["zero_optimization"]["stage"] == stage and deepspeed.is_zero3() == (stage == 3)
    # The file's "auto" values are filled from the run's own options, as the Trainer does before it starts.
    assert deepspeed.config["train_micro_batch_size_per_gpu"] == args.per_device_train_batch_size
    assert deepspeed.config["gradient_accumulation_steps"] == args.gradient_accumulation_steps
    assert deepspeed.config["train_batch_size"] == args.per_device_train_batch_size * args.gradient_accumulation_steps


@pytest.mark.parametrize("path", ACCELERATE, ids=_name)
def test_accelerate_config_loads_with_accelerates_loader(path):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    config = load_config_from_file(str(path))

    assert isinstance(config, ClusterConfig) and config.num_processes >= 2 and config.num_machines == 1
    # The launch line in the file's first comment names files that exist.
    launch = path.read_text().splitlines()[0]
    named = re.findall(r"(configs/\S+\.yaml)", launch)
    assert named and all((CONFIGS.parent / name).is_file() for name in named), launch


def test_demo_config_is_the_embedded_default():
    embedded = resources.files("moemix").joinpath("demo.yaml").read_text(encoding="utf-8")
    repo = (CONFIGS / "demo.yaml").read_text(encoding="utf-8")
    assert load_config(text=embedded) == load_config(text=repo)
