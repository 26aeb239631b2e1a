"""Exports are read back by their consumers' own code: numpy's choice, datasets.interleave_datasets, Megatron."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from moemix.cli import main
from moemix.report.export import EXPORT_FORMATS, exact_probabilities, read_run, weight_windows, write_export

NINTHS = [1 / 9, 2 / 9, 1 / 3, 1 / 3]


def make_run(folder, final, updates=None, initial=None, global_step=10):
    """A finished run folder as training leaves it: mixture.jsonl (one record per update) and metrics.json."""
    names = [f"d{i}" for i in range(len(final))]
    updates = updates or [(global_step, final)]
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"step": step, "weights": dict(zip(names, map(float, w)))}) for step, w in updates]
    (folder / "mixture.jsonl").write_text("\n".join(lines) + "\n")
    metrics = {"global_step": global_step, "weights": dict(zip(names, map(float, final)))}
    if initial is not None:
        metrics["initial_weights"] = dict(zip(names, map(float, initial)))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def parse_back(fmt, text):
    """The probabilities and names as each consumer reads the exported text."""
    if fmt == "hf":
        data = json.loads(text)
        return data["datasets"], data["probabilities"]
    if fmt == "llamafactory":
        data = yaml.safe_load(text)
        # LLaMA-Factory's DataArguments.__post_init__: split_arg on ",", strip, then float.
        return [s.strip() for s in data["dataset"].split(",")], [float(s) for s in data["interleave_probs"].split(",")]
    tokens = text.split()
    if fmt == "megatron":
        assert tokens[0] == "--data-path"
        tokens = tokens[1:]
    return tokens[1::2], [float(t) for t in tokens[0::2]]


def random_weights(count):
    rng = np.random.default_rng(1234)
    vectors = [NINTHS, [1 / 3] * 3, [1 / 7] * 7, [1.0], [0.5, 0.5], [1e-9, 1 - 1e-9], [1e-7, 2e-7, 1.0]]
    for _ in range(count):
        n = int(rng.integers(2, 13))
        alpha = float(rng.choice([0.05, 0.3, 1.0, 10.0]))
        vectors.append(rng.dirichlet([alpha] * n).tolist())
    return vectors


def test_old_six_decimal_rounding_is_what_numpy_refuses():
    # The bug this module fixes: independent rounding of 1/9, 2/9, 1/3, 1/3 sums to 0.999999.
    rounded = [float(f"{v:.6f}") for v in NINTHS]
    with pytest.raises(ValueError, match="(?i)probabilities do not sum to 1"):
        np.random.default_rng(0).choice(4, p=rounded)
    assert exact_probabilities(NINTHS) == ["0.111111", "0.222222", "0.333334", "0.333333"]


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_every_export_passes_numpy_choice(tmp_path, fmt):
    for index, weights in enumerate(random_weights(150)):
        run = make_run(tmp_path / f"run{index}", weights)
        names, probs = parse_back(fmt, write_export(run, fmt).read_text())
        kept = [w for w in weights if w > 0]
        assert len(probs) == len(names) == len(kept)
        assert all(p > 0 for p in probs)
        np.random.default_rng(0).choice(len(probs), size=10, p=probs)  # raises if the sum is off
        assert abs(sum(probs) - 1.0) < 1e-12
        expected = np.array(kept) / sum(kept)
        # Within a unit of 1e-6, plus one unit the largest gives to each weight too small for one of its own.
        lifted = int((expected < 1e-6).sum())
        assert np.abs(np.array(probs) - expected).max() <= (1 + lifted) * 1e-6 + 1e-12, (weights, probs)


@pytest.mark.parametrize("fmt", ["hf", "llamafactory"])
def test_interleave_datasets_accepts_the_export(tmp_path, fmt):
    from datasets import Dataset, interleave_datasets

    for index, weights in enumerate(random_weights(25)):
        run = make_run(tmp_path / f"run{index}", weights)
        names, probs = parse_back(fmt, write_export(run, fmt).read_text())
        parts = [Dataset.from_dict({"source": [name] * 3}) for name in names]
        # all_exhausted is what the hf export and LLaMA-Factory's interleave_over ask for.
        mixed = interleave_datasets(parts, probabilities=probs, seed=0, stopping_strategy="first_exhausted")
        assert set(mixed["source"]) <= set(names) and len(mixed) >= 3
    run = make_run(tmp_path / "ninths", NINTHS)
    names, probs = parse_back(fmt, write_export(run, fmt).read_text())
    parts = [Dataset.from_dict({"source": [name] * 5}) for name in names]
    mixed = interleave_datasets(parts, probabilities=probs, seed=0, stopping_strategy="all_exhausted")
    assert set(mixed["source"]) == set(names)


def test_a_zero_weight_dataset_is_left_out(tmp_path):
    from datasets import Dataset, interleave_datasets

    run = make_run(tmp_path / "run", [0.5, 0.0, 0.5])
    names, probs = parse_back("hf", write_export(run, "hf").read_text())
    assert names == ["d0", "d2"] and probs == [0.5, 0.5]
    # datasets refuses a 0 under all_exhausted, which is why it is left out rather than written.
    parts = [Dataset.from_dict({"x": [1, 2]}) for _ in range(3)]
    with pytest.raises(ValueError, match="probability 0"):
        interleave_datasets(parts, probabilities=[0.5, 0.0, 0.5], stopping_strategy="all_exhausted")


MEGATRON_READ = """
import json, sys
from megatron.core.datasets.utils import get_blend_from_list
out = []
for path, flag in zip(sys.argv[1::2], sys.argv[2::2]):
    tokens = open(path).read().split()
    if flag == "flag":  # Megatron's --data-path flag: the tokens after it
        tokens = tokens[1:]
    out.append(get_blend_from_list(tokens))
print(json.dumps(out))
"""


@pytest.mark.skipif(importlib.util.find_spec("megatron") is None, reason="megatron-core is not installed (dev extra)")
def test_megatron_reads_weights_and_prefixes(tmp_path):
    run = make_run(tmp_path / "run", NINTHS)
    prefixes = {f"d{i}": f"/data/set{i}_text_document" for i in range(4)}
    names = ",".join(f"{k}={v}" for k, v in prefixes.items())
    args_file = write_export(run, "megatron-args", names=names)
    flag_file = write_export(run, "megatron", names=names)
    wrong = tmp_path / "flag-as-args-file.txt"  # the old export used as --data-args-path
    wrong.write_text(flag_file.read_text())
    argv = [str(args_file), "args", str(flag_file), "flag", str(wrong), "args"]
    done = subprocess.run([sys.executable, "-c", MEGATRON_READ, *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    from_args, from_flag, from_wrong = json.loads(done.stdout.strip().splitlines()[-1])
    for blend in (from_args, from_flag):
        assert blend[0] == list(prefixes.values())
        assert blend[1] == [0.111111, 0.222222, 0.333334, 0.333333]
    assert from_wrong[1] is None  # every token read as a prefix: what the flag line in an args file does


def test_name_map_inline_yaml_and_json(tmp_path):
    run = make_run(tmp_path / "run", NINTHS)
    inline = parse_back(
        "llamafactory", write_export(run, "llamafactory", names="d0=my_sharegpt,d2=alpaca_en").read_text()
    )
    assert inline[0] == ["my_sharegpt", "d1", "alpaca_en", "d3"]  # unmapped datasets keep moemix's name
    (tmp_path / "names.yaml").write_text("d0: sharegpt\nd1: '2024'\nd2: code\nd3: math\n")
    (tmp_path / "names.json").write_text(json.dumps({"d3": "m", "d0": "s", "d1": "c", "d2": "x"}))
    assert parse_back("hf", write_export(run, "hf", names=str(tmp_path / "names.yaml")).read_text())[0] == [
        "sharegpt",
        "2024",
        "code",
        "math",
    ]
    assert parse_back(
        "megatron-args", write_export(run, "megatron-args", names=str(tmp_path / "names.json")).read_text()
    )[0] == ["s", "c", "x", "m"]


def test_schedule_holds_each_windows_weights(tmp_path):
    first, second = [0.5, 0.25, 0.25], [0.2, 0.3, 0.5]
    run = make_run(
        tmp_path / "run", second, updates=[(4, first), (8, first), (12, second)], initial=[1 / 3] * 3, global_step=16
    )
    windows = weight_windows(read_run(run))
    assert [(w["start_step"], w["end_step"]) for w in windows] == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert main(["export-weights", str(run), "--format", "llamafactory", "--schedule"]) == 0
    schedule = json.loads((run / "weights.llamafactory.schedule.json").read_text())
    stages = schedule["stages"]
    # Windows 4-8 and 8-12 hold the same weights: one stage.
    assert [(s["start_step"], s["end_step"]) for s in stages] == [(0, 4), (4, 12), (12, 16)]
    assert [s["end_fraction"] for s in stages] == [0.25, 0.75, 1.0] and schedule["total_steps"] == 16
    assert [s["interleave_probs"] for s in stages] == [
        "0.333334,0.333333,0.333333",
        "0.500000,0.250000,0.250000",
        "0.200000,0.300000,0.500000",
    ]
    for stage in stages:
        np.random.default_rng(0).choice(3, p=[float(p) for p in stage["interleave_probs"].split(",")])


def test_average_counts_each_weight_for_the_steps_it_held(tmp_path):
    run = make_run(
        tmp_path / "run", [0.0, 1.0], updates=[(5, [1.0, 0.0]), (10, [0.0, 1.0])], initial=[0.5, 0.5], global_step=20
    )
    names, probs = parse_back("hf", write_export(run, "hf", average=True).read_text())
    # 5 steps at (.5,.5), 5 at (1,0), 10 at (0,1): (2.5 + 5) / 20 and (2.5 + 10) / 20.
    assert probs == [0.375, 0.625]
