"""each_file: one dataset per file of a glob or folder, named from the file stems, with the entry's settings."""

from __future__ import annotations

import pytest

from moemix.config import dump_config, load_config
from moemix.errors import ConfigError

HEAD = "model: {tiny: mixtral, tokenizer: builtin}\ndatasets:\n"


def _files(root, names):
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_text('{"prompt": "p", "completion": "c"}\n')
    return root


def _load(tmp_path, body: str, **kw):
    path = tmp_path / "c.yaml"
    path.write_text(HEAD + body)
    return load_config(path, **kw)


def test_a_glob_becomes_one_dataset_per_file_in_sorted_order_with_shared_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths start at the working directory
    _files(tmp_path / "data" / "t0", ["b_task.jsonl", "a_task.jsonl.gz", "c_task.csv", "notes.txt"])
    config = _load(
        tmp_path,
        """\
  - name: "t0_{stem}"
    path: data/t0/*task*
    each_file: true
    dev_size: 2
    strip_suffix: {completion: "<|endoftext|>"}
  - {name: chat, path: data/chat.jsonl, dev_size: 3}
mixing: {policy: static, weights: {t0_a_task: 0.25, t0_b_task: 0.25, t0_c_task: 0.25, chat: 0.25}}
""",
    )
    assert [ds.name for ds in config.datasets] == ["t0_a_task", "t0_b_task", "t0_c_task", "chat"]
    assert [ds.path for ds in config.datasets[:3]] == [
        f"data/t0/{n}" for n in ("a_task.jsonl.gz", "b_task.jsonl", "c_task.csv")
    ]
    for ds in config.datasets[:3]:
        assert not ds.each_file and ds.dev_size == 2 and ds.strip_suffix == {"completion": "<|endoftext|>"}
    # The config a run writes down reads back to the same datasets.
    (tmp_path / "run_config.yaml").write_text(dump_config(config))
    assert load_config(tmp_path / "run_config.yaml") == config


def test_a_folder_takes_its_data_files_recursively_and_skips_hidden_ones(tmp_path):
    root = _files(tmp_path / "tasks", ["x.jsonl", "README.md", ".hidden.jsonl"])
    _files(root / "more", ["y.tsv"])
    config = _load(
        tmp_path,
        f"""\
  - {{name: "{{stem}}", path: "{root}", each_file: true, dev_size: 1}}
""",
    )
    assert [(ds.name, ds.path) for ds in config.datasets] == [("y", f"{root}/more/y.tsv"), ("x", f"{root}/x.jsonl")]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            '{name: tasks, path: "T/*.jsonl", each_file: true, dev_size: 1}',
            r":3: datasets.0.name: with each_file, a pattern holding {stem}",
        ),
        (
            '{name: "{stem}", path: "T/*.parquet", each_file: true, dev_size: 1}',
            r":3: datasets.0.path: no data file matches '.*T/\*.parquet' "
            r"\(relative paths start at the working directory\)",
        ),
        (
            '{name: "{stem}", path: "T/*", each_file: true, dev_size: 1}',
            r":3: datasets.0.path: .*notes.txt is not a data file",
        ),
        (
            '{name: "{stem}", path: "T/a.jsonl", each_file: true, dev_size: 1}',
            r":3: datasets.0.path: with each_file, must be a glob pattern or a folder",
        ),
        (
            '{name: "{stem}", path: ["T/a.jsonl"], each_file: true, dev_size: 1}',
            r":3: datasets.0.path: with each_file, must be one glob pattern or folder",
        ),
        (
            '{name: "{stem}", path: "T/*.jsonl", each_file: true, dev_path: d.jsonl}',
            r":3: datasets.0.dev_path: not with each_file",
        ),
        (
            '{name: "{stem}", path: "T/*.jsonl", each_file: true, dev_size: 1.5}',
            r":3: datasets.0.dev_size: a fraction must be in \(0, 1\)",
        ),
        (
            '{name: "a", path: "T/*.jsonl", each_file: true, dev_size: 1}\n  - {name: a, path: x.jsonl, dev_size: 1}',
            r":3: datasets.0.name: with each_file, a pattern",
        ),
        (
            '{name: "{stem}", path: "T/*.jsonl", each_file: true, dev_size: 1}\n'
            "  - {name: a, path: x.jsonl, dev_size: 1}",
            r":3: datasets.0.name: .*T/a.jsonl gives the name 'a', already datasets.1's",
        ),
        (
            '{name: "{stem}", path: "T/*.jsonl", each_file: true, truncation: middle, dev_size: 1}',
            r":3: datasets.0.truncation: must be one of drop, left, right, got 'middle'",
        ),
        (
            '{name: "{stem}", path: "T/*.jsonl", each_file: true, dev_size: 1, remove_regex: {c: "(unclosed"}}',
            r":3: datasets.0.remove_regex.c: not a valid regular expression",
        ),
        (
            '{name: "{stem}", path: "T/*.jsonl", each_file: true, dev_size: 1, strip_suffix: {c: ""}}',
            r":3: datasets.0.strip_suffix.c: must be a non-empty text",
        ),
    ],
)
def test_bad_entries_name_the_file_line_and_field(tmp_path, entry, expected):
    _files(tmp_path / "T", ["a.jsonl", "b.jsonl", "notes.txt"])
    with pytest.raises(ConfigError, match=expected):
        _load(tmp_path, f"  - {entry.replace('T/', f'{tmp_path}/T/')}\n  - {{name: z, path: z.jsonl, dev_size: 1}}\n")


def test_rules_broken_after_expansion_point_at_the_entry_and_the_file(tmp_path):
    _files(tmp_path / "T", ["a.jsonl", "b.jsonl"])
    body = f"""\
  - {{name: "{{stem}}", path: "{tmp_path}/T/*.jsonl", each_file: true, dev_size: 1}}
  - {{name: z, path: z.jsonl, dev_size: 1}}
mixing: {{weights: {{a: 0.5, b: 0.5}}}}
"""
    with pytest.raises(ConfigError, match=r"c.yaml:5: mixing.weights: no weight for dataset\(s\): z"):
        _load(tmp_path, body)
    # A dev set under an expanded name works; the each_file and truncation options are not a dev set's.
    config = _load(
        tmp_path,
        body.replace("mixing: {weights: {a: 0.5, b: 0.5}}", "dev_datasets:\n  - {name: z, path: d.jsonl}").replace(
            "{name: z, path: z.jsonl, dev_size: 1}", "{name: z, path: z.jsonl}"
        ),
    )
    assert [ds.name for ds in config.datasets] == ["a", "b", "z"]
    with pytest.raises(ConfigError, match=r":6: dev_datasets.0.each_file: not in a dev set"):
        _load(
            tmp_path,
            body.replace(
                "mixing: {weights: {a: 0.5, b: 0.5}}", "dev_datasets:\n  - {name: a, path: d.jsonl, each_file: true}"
            ).replace(", dev_size: 1}\n  - {name: z", "}\n  - {name: z"),
        )


def test_entries_after_an_expanded_one_keep_their_place_in_errors(tmp_path):
    # Two files make datasets 0 and 1 of the expanded list; the third entry as written is the fourth there,
    # and an error about it still names datasets.2 at its own line.
    _files(tmp_path / "T", ["a.jsonl", "b.jsonl"])
    with pytest.raises(ConfigError, match=r"c.yaml:5: datasets.2.name: duplicate dataset name 'z'"):
        _load(
            tmp_path,
            f"""\
  - {{name: "{{stem}}", path: "{tmp_path}/T/*.jsonl", each_file: true, dev_size: 1}}
  - {{name: z, path: z.jsonl, dev_size: 1}}
  - {{name: z, path: y.jsonl, dev_size: 1}}
""",
        )
