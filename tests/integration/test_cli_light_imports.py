"""Commands that read a run folder answer without importing torch or transformers (a second, not ten)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from moemix.config import load_config
from moemix.train import run_training

CONFIG = """
max_length: 128
eval_batches: 1
datasets:
  - {name: dialogue, path: "builtin:dialogue", max_examples: 40}
  - {name: math, path: "builtin:math", max_examples: 40}
model: {tiny: mixtral, tokenizer: builtin, vocab_size: 400}
mixing: {interval: 2, probe_batches: 1, probe_batch_size: 4}
training: {max_steps: 4, per_device_train_batch_size: 4, disable_tqdm: true, logging_strategy: "no"}
"""

HEAVY = ("torch", "transformers", "datasets", "peft", "accelerate")

# Runs the CLI in a fresh interpreter and prints, as its last line, which heavy modules it loaded.
WRAPPER = """
import json, sys
from moemix.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "loaded": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real finished run: mixture.jsonl, metrics.json, mixture_state.json, the model."""
    tmp = tmp_path_factory.mktemp("light")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOEMIX_CACHE", str(tmp / "cache"))
        run_training(load_config(text=CONFIG, overrides=[f"--output_dir={tmp / 'run'}"]))
    return tmp / "run"


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["replay", "{run}"], ["replay", "{run}", "--json"], ["export-weights", "{run}"], ["report", "{run}"]],
    ids=["help", "replay", "replay-json", "export-weights", "report"],
)
def test_run_folder_commands_never_import_torch(run_dir, argv):
    args = [a.format(run=run_dir) for a in argv]
    done = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] in (0, None), done.stderr
    assert result["loaded"] == [], f"moemix {' '.join(argv)} imported {result['loaded']}"
