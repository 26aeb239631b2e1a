"""Held-out dev splits follow data_seed, not the training seed: every run of a comparison evaluates alike."""

from __future__ import annotations

import json

import pytest

from moemix.config import load_config
from moemix.data.load import load_data
from moemix.testing import builtin_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return builtin_tokenizer(("math",), 40, vocab_size=400, cache_dir=tmp_path_factory.mktemp("tok"))


def _dev_examples(tmp_path, tok, extra: str) -> dict[str, list[tuple[int, ...]]]:
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f"""\
model: {{tiny: mixtral, tokenizer: builtin}}
datasets:
  - {{name: a, path: "{tmp_path / "a.jsonl"}", dev_size: 6}}
  - {{name: b, path: "{tmp_path / "b.jsonl"}", dev_size: 0.25}}
{extra}
""")
    config = load_config(config_path)
    return {
        ds.name: sorted(tuple(x) for x in item.dev.input_ids)
        for ds, item in zip(config.datasets, load_data(config, tok))
    }


def test_configs_differing_only_in_seed_hold_out_the_same_dev_examples(tmp_path, tok, cache):
    for name in ("a", "b"):
        rows = [{"instruction": f"{name}: add {i} and {i + 1}", "output": f"{2 * i + 1}"} for i in range(40)]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    seed_1 = _dev_examples(tmp_path, tok, "seed: 1")
    seed_42 = _dev_examples(tmp_path, tok, "seed: 42")
    assert seed_1 == seed_42 and len(seed_1["a"]) == 6 and len(seed_1["b"]) == 10
    # The data seed itself does move them: the test above would see a difference if they followed any seed.
    other = _dev_examples(tmp_path, tok, "seed: 1\ndata_seed: 7")
    assert other["a"] != seed_1["a"] and other["b"] != seed_1["b"]
