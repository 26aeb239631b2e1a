"""Exact resume: a run killed with SIGKILL and resumed equals an uninterrupted run, bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from moemix.cli import main
from moemix.config import load_config
from moemix.errors import MoemixError
from moemix.files import read_jsonl
from moemix.testing import tiny_run_config
from moemix.train import prepare_run
from moemix.train.checkpoint import STATE_FILE, complete_checkpoints

SETTINGS = dict(
    datasets=("dialogue", "math", "code"),
    max_examples=150,
    seed=11,
    log_draws=True,
    mixing={"interval": 3, "probe_batches": 2},
    training={"max_steps": 40, "learning_rate": 0.003, "save_strategy": "steps", "save_steps": 10},
)
CONFIG = tiny_run_config(**SETTINGS)

# Runs a config in a child process and kills that process with SIGKILL at a chosen point.
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from transformers import TrainerCallback
    from moemix.config import load_config
    from moemix.train import prepare_run

    config_path, out, mode, step = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    run = prepare_run(load_config(config_path, [f"--output_dir={out}"]))

    class KillAtStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                os.kill(os.getpid(), signal.SIGKILL)

    if mode == "step":
        run.trainer.add_callback(KillAtStep())
    else:  # die while checkpoint-<step> is half written: after the weights and optimizer, before the rest
        original = run.trainer._save_rng_state

        def dying(output_dir):
            if run.trainer.state.global_step == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(output_dir)

        run.trainer._save_rng_state = dying
    run.train()
    """
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    config = root / "run.yaml"
    config.write_text(CONFIG)
    straight = root / "straight"
    prepare_run(load_config(config, [f"--output_dir={straight}"])).train()
    return root, config, straight


def _kill(config: Path, out: Path, mode: str, step: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(config), str(out), mode, str(step)],
        capture_output=True,
        text=True,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == -9, proc.stderr[-2000:]


def _params(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "model" / "model.safetensors")


def _assert_same_run(a: Path, b: Path, after_step: int) -> None:
    assert (a / "mixture.jsonl").read_bytes() == (b / "mixture.jsonl").read_bytes()
    draws_a = [r for r in read_jsonl(a / "draws.jsonl") if r["step"] > after_step]
    draws_b = [r for r in read_jsonl(b / "draws.jsonl") if r["step"] > after_step]
    assert draws_a and draws_a == draws_b
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    for name in pa:
        assert torch.equal(pa[name], pb[name]), name


def _assert_same_metrics(a: Path, b: Path) -> None:
    """metrics.json of a resumed run equals the uninterrupted one's (the loss sum is carried in checkpoints)."""
    ma, mb = (json.loads((run / "metrics.json").read_text()) for run in (a, b))
    for metrics in (ma, mb):
        metrics.pop("wall_time_s")
    assert mb.pop("train_loss") == pytest.approx(ma.pop("train_loss"), rel=1e-6)
    assert ma == mb


@pytest.mark.slow  # a child process trains to step 23 and is killed, then the resumed run: ~15 s of CPU
def test_sigkill_then_resume_equals_straight_run(setup, capsys):
    root, config, straight = setup
    killed = root / "killed"
    _kill(config, killed, "step", 23)
    # The killed run logged an update at step 21, after its last checkpoint (20): resuming drops it.
    assert [r["step"] for r in read_jsonl(killed / "mixture.jsonl")][-1] == 21
    assert main(["train", str(config), f"--output_dir={killed}", "--resume_from_checkpoint", "true"]) == 0
    _assert_same_run(straight, killed, after_step=20)
    _assert_same_metrics(straight, killed)
    state = json.loads((killed / "checkpoint-20" / STATE_FILE).read_text())
    assert state["step"] == 20 and state["sampler"]["draws"] == 20 * 4


@pytest.mark.slow  # a child process killed while saving, then the resumed run: ~13 s of CPU
def test_sigkill_while_saving_leaves_previous_checkpoint(setup):
    root, config, straight = setup
    torn = root / "torn"
    _kill(config, torn, "save", 20)
    assert (torn / "checkpoint-20").is_dir()  # half written ...
    assert [p.name for p in complete_checkpoints(torn)] == ["checkpoint-10"]  # ... and not taken for complete
    (torn / "checkpoint-15").mkdir()  # another half-written one, that the resumed run would not write again
    (torn / "checkpoint-15" / "model.safetensors").write_bytes(b"half")
    assert main(["train", str(config), f"--output_dir={torn}", "--resume_from_checkpoint=true"]) == 0
    assert not (torn / "checkpoint-15").exists()  # removed when the run started
    _assert_same_run(straight, torn, after_step=10)
    _assert_same_metrics(straight, torn)


def test_changed_mixture_on_resume_is_refused(setup, capsys):
    root, config, straight = setup
    code = main(
        ["train", str(config), f"--output_dir={straight}", "--resume_from_checkpoint", "true", "--mixing.eta=5"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "mixing.eta: 10.0 -> 5.0" in err and "--allow_mixture_change" in err


def test_resume_without_checkpoint_is_an_error(setup, tmp_path):
    _, config, _ = setup
    with pytest.raises(MoemixError, match="no complete checkpoint"):
        prepare_run(load_config(config, [f"--output_dir={tmp_path}", "--resume_from_checkpoint=true"]))


@pytest.mark.slow  # a straight run, a killed child process and the resumed run: ~15 s of CPU
def test_online_source_resumes_mid_window_exactly(setup):
    # With the online signal the counts of the window in progress live in the checkpoint: a run killed at
    # step 23 and resumed from step 20 (mid-window: updates at 18 and 21) still equals the straight run.
    root, _, _ = setup
    config = root / "online.yaml"
    config.write_text(
        tiny_run_config(**SETTINGS | {"mixing": SETTINGS["mixing"] | {"source": "online", "load_ema": 0.5}})
    )
    straight = root / "online_straight"
    prepare_run(load_config(config, [f"--output_dir={straight}"])).train()
    killed = root / "online_killed"
    _kill(config, killed, "step", 23)
    assert main(["train", str(config), f"--output_dir={killed}", "--resume_from_checkpoint", "true"]) == 0
    _assert_same_run(straight, killed, after_step=20)
    _assert_same_metrics(straight, killed)
