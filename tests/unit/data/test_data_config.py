"""Dataset entries of a config: the rules checked at load time, each error naming the file, line and field."""

from __future__ import annotations

import pytest

from moemix.config import load_config
from moemix.errors import ConfigError

BASE = """\
model: {tiny: mixtral, tokenizer: builtin}
datasets:
  - name: chat
    path: data/chat.jsonl
    dev_size: 10
  - name: math
    path: [data/gsm8k_a.jsonl, data/gsm8k_b.jsonl]
    dev_size: 0.1
"""


def _load(tmp_path, extra: str = "", **replace):
    text = BASE + extra
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path, lambda: load_config(path)


def test_valid_entries_do_not_need_the_files(tmp_path):
    path, load = _load(
        tmp_path,
        """\
dev_datasets:
  - {name: chat, path: data/chat_dev.tsv, fields: [prompt, completion]}
data: {skip_invalid: true, cache: false}
""",
        **{"dev_size: 10": "format: sharegpt"},
    )
    config = load()
    assert config.datasets[1].path == ["data/gsm8k_a.jsonl", "data/gsm8k_b.jsonl"]
    assert config.datasets[1].dev_size == 0.1 and isinstance(config.datasets[1].dev_size, float)
    assert config.dev_datasets[0].fields == ["prompt", "completion"]
    assert config.data.skip_invalid and not config.data.cache


@pytest.mark.parametrize(
    ("extra", "replace", "expected"),
    [
        ("", {"name: math": "name: chat"}, ":6: datasets.1.name: duplicate dataset name 'chat'"),
        (
            "dev_datasets:\n  - {name: maths, path: d.jsonl}\n",
            {},
            ":10: dev_datasets.0.name: 'maths' names no training dataset; known: chat, math",
        ),
        (
            "dev_datasets:\n  - {name: math, path: d.jsonl}\n",
            {},
            ":10: dev_datasets.0.name: dataset 'math' already has a dev_path or dev_size",
        ),
        (
            "dev_datasets:\n  - {name: chat, path: d.jsonl}\n  - {name: chat, path: e.jsonl}\n",
            {"dev_size: 10": "format: auto"},
            ":11: dev_datasets.1.name: a second dev set for dataset 'chat'",
        ),
        (
            "dev_datasets:\n  - {name: chat, path: d.jsonl, dev_size: 3}\n",
            {"dev_size: 10": "format: auto"},
            ":10: dev_datasets.0.dev_size: not allowed in a dev set",
        ),
        (
            "",
            {"dev_size: 10": "format: xml"},
            ":5: datasets.0.format: must be one of auto, sharegpt, openai, alpaca, prompt_completion, got 'xml'",
        ),
        ("", {"dev_size: 10": "columns: {question: q}"}, ":5: datasets.0.columns.question: not a moemix field"),
        (
            "",
            {"dev_size: 10": "templates: {output: '{rationale'}"},
            ":5: datasets.0.templates.output: not a valid template",
        ),
        (
            "",
            {"dev_size: 10": "templates: {output: '{}'}"},
            ":5: datasets.0.templates.output: not a valid template (placeholders must name a field",
        ),
        (
            "",
            {"dev_size: 10": "templates: {output: '{a}'}\n    columns: {output: b}"},
            ":5: datasets.0.templates.output: also in columns",
        ),
        (
            "",
            {"dev_size: 10": "fields: []"},
            ":5: datasets.0.fields: must be a non-empty list of distinct column names",
        ),
        ("", {"dev_size: 0.1": "dev_size: 1.5"}, ":8: datasets.1.dev_size: a fraction must be in (0, 1), got 1.5"),
        ("", {"dev_size: 10": "dev_size: -2"}, ":5: datasets.0.dev_size: must be >= 0, got -2"),
        (
            "",
            {"dev_size: 10": "dev_size: 10\n    dev_path: d.jsonl"},
            ":5: datasets.0.dev_size: give dev_path or dev_size, not both",
        ),
        ("", {"path: data/chat.jsonl": "path: []"}, ":4: datasets.0.path: must name at least one file"),
        ("", {"dev_size: 10": "skip_invalid: maybe"}, ":5: datasets.0.skip_invalid: expected"),
        ("data: {skip_invalids: true}\n", {}, ":9: data.skip_invalids: unknown key"),
    ],
)
def test_bad_entries_name_file_line_and_field(tmp_path, extra, replace, expected):
    path, load = _load(tmp_path, extra, **replace)
    with pytest.raises(ConfigError) as info:
        load()
    assert f"{path}{expected}" in str(info.value)
