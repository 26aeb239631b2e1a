"""A LLaMA-Factory workspace on disk: a tiny MoE with a tokenizer, three local datasets and their dataset_info.json.

The three datasets are built so that their routing differs: each draws its words from its own disjoint part of
the vocabulary (lower-case words, digits, punctuation runs).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

from moemix.data.tokenizer import train_bpe_tokenizer
from moemix.testing import tiny_moe

NAMES = ("words", "numbers", "symbols")
ALPHABETS = {"words": set("abcdefghij "), "numbers": set("0123456789 "), "symbols": set("!?#$%&*+=<> ")}
"""The characters of each dataset's texts: a decoded label that strays outside its dataset's set is misattributed."""


def _text(kind: str, rng: random.Random, n: int) -> str:
    if kind == "words":
        return " ".join("".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 5))) for _ in range(n))
    if kind == "numbers":
        return " ".join(str(rng.randint(0, 9999)) for _ in range(n))
    return " ".join("".join(rng.choice("!?#$%&*+=<>") for _ in range(rng.randint(1, 3))) for _ in range(n))


def examples(kind: str, count: int, seed: int) -> list[dict[str, str]]:
    """``count`` alpaca-format examples of one kind."""
    rng = random.Random(f"{kind}-{seed}")
    return [
        {
            "instruction": _text(kind, rng, rng.randint(3, 8)),
            "input": "",
            "output": _text(kind, rng, rng.randint(3, 10)),
        }
        for _ in range(count)
    ]


def build_workspace(root: Path, sizes=(24, 16, 20), arch: str = "qwen2_moe", invalid: int = 3) -> Path:
    """Write model/, data/ (one JSON file per dataset and dataset_info.json) under ``root``; return ``root``.

    The first dataset also holds ``invalid`` examples without a response, which LLaMA-Factory drops while
    tokenising: the rows after them move, their dataset must not.
    """
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    info, texts = {}, []
    for name, size in zip(NAMES, sizes):
        rows = examples(name, size, seed=0)
        if name == NAMES[0]:
            for i in range(invalid):
                rows.insert(3 + 5 * i, {"instruction": "abc", "input": "", "output": None})
        texts += [r["instruction"] + " " + r["output"] for r in rows if r["output"] is not None]
        (data / f"{name}.json").write_text(json.dumps(rows))
        info[name] = {"file_name": f"{name}.json"}
    (data / "dataset_info.json").write_text(json.dumps(info, indent=1))
    tokenizer = train_bpe_tokenizer(texts, vocab_size=320, cache_dir=root / "tokenizer-cache")
    model = tiny_moe(arch, vocab_size=len(tokenizer), seed=0)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    return root


def write_config(root: Path, output_dir: Path, **overrides) -> Path:
    """A LLaMA-Factory SFT config over the workspace with a moemix section; ``overrides`` replace keys."""
    config = {
        "model_name_or_path": str(root / "model"),
        "trust_remote_code": False,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "full",
        "dataset": ",".join(NAMES),
        "dataset_dir": str(root / "data"),
        "template": "chatml",
        "cutoff_len": 64,
        "overwrite_cache": True,
        "preprocessing_num_workers": None,
        "output_dir": str(output_dir),
        "logging_steps": 1,
        "save_strategy": "no",
        "overwrite_output_dir": True,
        "report_to": "none",
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "learning_rate": 3.0e-3,
        "max_steps": 8,
        "lr_scheduler_type": "constant",
        "seed": 0,
        "bf16": False,
        "use_cpu": True,
        "dataloader_pin_memory": False,
        "moemix": {"policy": "dynamic", "eta": 10.0, "c": 0.05, "interval": 2},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = config[key] | value
        elif value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path = root / f"{output_dir.name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
