"""Real Trainer, tiny real MoE: the noise-aware update moves the weights only as far as the routing signal stands
above its noise: far less than the paper's on datasets that route alike, about as far on datasets that do not."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from moemix.config import load_config
from moemix.files import read_jsonl
from moemix.report.replay import replay
from moemix.train import prepare_run
from moemix.train.policies import replay_policy

SHARED = [f"w{i}" for i in range(60)]  # one vocabulary: four samples of the same kind of data
OWN = [[f"{letter}{i}" for i in range(4)] for letter in "pqrs"]  # four vocabularies of four words each

CONFIG = """
seed: 11
max_length: 48
eval_batches: 1
datasets:
{datasets}
model: {{tiny: mixtral, tokenizer: builtin, vocab_size: 320}}
mixing: {{policy: dynamic, interval: 3, probe_batches: 2, probe_batch_size: 8, noise_aware: {aware}}}
training:
  max_steps: 12
  per_device_train_batch_size: 4
  per_device_eval_batch_size: 8
  learning_rate: 0.003
  disable_tqdm: true
  logging_strategy: "no"
"""


def write_datasets(folder, vocabularies: list[list[str]]) -> str:
    entries = []
    for index, words in enumerate(vocabularies):
        rng = random.Random(index)
        path = folder / f"set{index}.jsonl"
        with path.open("w") as fh:
            for _ in range(60):
                prompt = " ".join(rng.choice(words) for _ in range(rng.randint(4, 10)))
                completion = " ".join(rng.choice(words) for _ in range(rng.randint(3, 8)))
                fh.write(json.dumps({"prompt": prompt, "completion": completion}) + "\n")
        entries.append(f'  - {{name: set{index}, path: "{path}", format: prompt_completion, dev_size: 16}}')
    return "\n".join(entries)


def moved(record: dict) -> float:
    """Total variation distance of an update's weights from uniform."""
    w = np.array(list(record["weights"].values()))
    return 0.5 * float(np.abs(w - 1 / len(w)).sum())


def train(tmp_path, monkeypatch, datasets: str, aware: bool) -> list[dict]:
    monkeypatch.setenv("MOEMIX_CACHE", str(tmp_path / "cache"))
    out = tmp_path / ("aware" if aware else "paper")
    config = load_config(
        text=CONFIG.format(datasets=datasets, aware=str(aware).lower()), overrides=[f"--output_dir={out}"]
    )
    prepare_run(config).train()
    return read_jsonl(out / "mixture.jsonl")


@pytest.mark.parametrize("kind", ["alike", "distinct"])
def test_noise_aware_run_moves_by_the_signal_above_the_noise(tmp_path, monkeypatch, kind):
    datasets = write_datasets(tmp_path, [SHARED] * 4 if kind == "alike" else OWN)
    paper = train(tmp_path, monkeypatch, datasets, aware=False)
    aware = train(tmp_path, monkeypatch, datasets, aware=True)

    assert [r["step"] for r in paper] == [r["step"] for r in aware] == [3, 6, 9, 12]
    assert all(r["noise"]["units"] == [16] * 4 for r in paper + aware)  # one unit per probe example
    paper_moved = np.mean([moved(r) for r in paper])
    aware_moved = np.mean([moved(r) for r in aware])
    if kind == "alike":
        assert all(r["noise"]["indistinguishable"] for r in paper)
        assert aware_moved < 0.5 * paper_moved, (aware_moved, paper_moved)
    else:
        assert not any(r["noise"]["indistinguishable"] or r["noise"]["within_noise"] for r in paper)
        assert 0.7 * paper_moved < aware_moved <= paper_moved * 1.05, (aware_moved, paper_moved)
    # The noise-aware run replays from its own log, update for update.
    mixing = load_config(text=CONFIG.format(datasets=datasets, aware="true")).mixing
    replayed = replay(tmp_path / "aware", replay_policy(mixing, [f"set{i}" for i in range(4)]))
    for row, record in zip(replayed, aware):
        assert row["weights"] == pytest.approx(record["weights"], abs=1e-12)
