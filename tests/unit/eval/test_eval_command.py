"""`moemix eval` end to end on a tiny saved model: every task, JSON and table, and bad input."""

from __future__ import annotations

import gzip
import json

import pytest

from moemix.cli import main
from moemix.testing import save_tiny_model, tiny_run_config

# Only what evaluation reads matters here (datasets, max_length, eval_batches, the eval batch size); the model is
# the one given on the command line.
CONFIG = tiny_run_config(
    ("math", "code"), 20, model={"name_or_path": "unused"}, training={"per_device_eval_batch_size": 4}
)

HUMANEVAL = {
    "task_id": "Toy/0",
    "prompt": 'def add(a, b):\n    """Return a + b."""\n',
    "entry_point": "add",
    "canonical_solution": "    return a + b\n",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
}


@pytest.fixture
def files(tmp_path):
    model_dir = save_tiny_model(tmp_path / "model", "mixtral", ("math", "code"), n=50, vocab_size=300)
    (tmp_path / "run.yaml").write_text(CONFIG)
    gsm = tmp_path / "gsm.jsonl"
    gsm.write_text(
        "".join(json.dumps({"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"}) + "\n" for i in range(3))
    )
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text(
        json.dumps(
            {
                "task_id": 11,
                "text": "Add.",
                "code": "def add(a, b): return a + b",
                "test_setup_code": "",
                "test_list": ["assert add(1, 2) == 3"],
            }
        )
        + "\n"
    )
    he = tmp_path / "he.jsonl.gz"
    with gzip.open(he, "wt") as fh:
        fh.write(json.dumps(HUMANEVAL) + "\n")
    return {"model": model_dir, "config": tmp_path / "run.yaml", "gsm8k": gsm, "mbpp": mbpp, "humaneval": he}


def test_every_task_on_a_tiny_model(files, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(
        [
            "eval",
            str(files["model"]),
            "--tasks",
            "devloss,gsm8k,humaneval,mbpp",
            "--limit",
            "2",
            "--config",
            str(files["config"]),
            "--gsm8k-file",
            str(files["gsm8k"]),
            "--mbpp-file",
            str(files["mbpp"]),
            "--humaneval-file",
            str(files["humaneval"]),
            "--max-new-tokens",
            "6",
            "--timeout",
            "5",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for row in ("loss/math", "loss/code", "exact_match", "pass@1"):
        assert row in printed
    results = json.loads(out.read_text())
    assert results["kind"] == "model"
    tasks = results["tasks"]
    assert set(tasks["devloss"]["loss"]) == {"math", "code"}
    assert all(loss > 0 for loss in tasks["devloss"]["loss"].values())
    assert tasks["gsm8k"]["n"] == 2  # --limit
    # A random model's 6 tokens are no solution: every program runs and fails (none passes by accident).
    assert tasks["humaneval"]["n"] == 1 and tasks["humaneval"]["samples"][0]["status"] in ("failed", "timeout")
    assert tasks["mbpp"]["n"] == 1 and tasks["mbpp"]["passed"] == 0


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("moemix: error: ")
    return err


def test_bad_input(files, tmp_path, capsys):
    model = str(files["model"])
    assert "unknown task 'mmlu'" in _error(capsys, ["eval", model, "--tasks", "devloss,mmlu"])
    assert "give --gsm8k-file" in _error(capsys, ["eval", model, "--tasks", "gsm8k"])
    assert "file not found" in _error(capsys, ["eval", model, "--tasks", "mbpp", "--mbpp-file", str(tmp_path / "x")])
    assert "--limit: must be >= 1" in _error(
        capsys, ["eval", model, "--tasks", "gsm8k", "--limit", "0", "--gsm8k-file", str(files["gsm8k"])]
    )
    assert "give --config" in _error(capsys, ["eval", model, "--tasks", "devloss"])
    assert "not a run folder" in _error(capsys, ["eval", str(tmp_path / "nowhere"), "--tasks", "devloss"])
