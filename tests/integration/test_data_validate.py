"""`moemix data validate`: the report of counts, lengths and problems; strict fails, skip_invalid passes."""

from __future__ import annotations

import json

import pytest

from moemix.cli import main

CONFIG = """
max_length: 128
datasets:
  - {{name: chat, path: "{chat}", dev_size: 2}}
  - {{name: cot, path: "{cot}", fields: [question, answer, rationale], literal_newlines: true,
     columns: {{instruction: question}}, templates: {{output: "{{rationale}} So the answer is {{answer}}."}},
     dev_size: 0.25}}
model: {{tiny: mixtral, tokenizer: builtin, vocab_size: 300}}
training: {{max_steps: 2, per_device_train_batch_size: 2, disable_tqdm: true}}
mixing: {{interval: 2, probe_batches: 1}}
"""


@pytest.fixture
def config(tmp_path, cache):
    chat = tmp_path / "chat.jsonl"
    good = [
        {"conversations": [{"from": "human", "value": f"Hi {i}"}, {"from": "gpt", "value": f"Hello {i}"}]}
        for i in range(8)
    ]
    lines = [json.dumps(r) for r in good]
    lines.insert(3, '{"conversations": [')  # line 4: malformed
    lines.insert(
        6, json.dumps({"conversations": [{"from": "gpt", "value": "I start"}, {"from": "human", "value": "no"}]})
    )
    chat.write_text("\n".join(lines) + "\n")
    cot = tmp_path / "cot.tsv"
    cot.write_text(
        "".join(
            f"Is {i} even?\\nOptions: yes, no\t{'yes' if i % 2 == 0 else 'no'}\t{i} mod 2 is {i % 2}.\n"
            for i in range(8)
        )
    )
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG.format(chat=chat, cot=cot))
    return path, chat


def test_strict_lists_every_problem_then_fails(config, capsys):
    path, chat = config
    code = main(["data", "validate", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.strip().startswith("moemix: error: 2 invalid record(s) in strict dataset(s) chat; first: ")
    assert f"{chat}:4: not valid JSON" in err and len(err.strip().splitlines()) == 1
    table = {
        tuple(line.split()[:2]): line.split()[2:] for line in out.splitlines() if line.startswith(("chat ", "cot "))
    }
    # records, kept, invalid, truncated away, truncated, tokens, ...
    assert table[("chat", "train")][:3] == ["8", "6", "2"]
    assert table[("chat", "dev")][:3] == ["2", "2", "0"]
    assert table[("cot", "train")][:3] == ["6", "6", "0"] and table[("cot", "dev")][:2] == ["2", "2"]
    assert "train problems: 1 malformed, 1 role order" in out
    assert f"{chat}:4: not valid JSON" in out
    assert f"{chat}:7: field 'conversations[0]': roles out of order: expected user, got assistant" in out
    assert "FAILED: 2 invalid record(s) in strict datasets" in out


def test_skip_invalid_passes_and_training_skips_the_same(config, capsys, tmp_path):
    path, chat = config
    assert main(["data", "validate", str(path), "--data.skip_invalid=true"]) == 0
    out = capsys.readouterr().out
    assert "OK: 2 invalid record(s) will be skipped and counted" in out
    # Strict training stops on the first invalid record, naming the file and line.
    assert main(["train", str(path), f"--output_dir={tmp_path / 'run'}"]) == 2
    assert f"moemix: error: {chat}:4: not valid JSON" in capsys.readouterr().err
    # Skipping, training runs on what validate reported.
    assert main(["train", str(path), f"--output_dir={tmp_path / 'run'}", "--data.skip_invalid=true"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["weights"]) == {"chat", "cot"}


def test_validate_names_a_missing_file(tmp_path, capsys, cache):
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG.format(chat=tmp_path / "gone.jsonl", cot=tmp_path / "gone.tsv"))
    assert main(["data", "validate", str(path)]) == 2
    assert f"moemix: error: {tmp_path / 'gone.jsonl'}: data file not found" in capsys.readouterr().err
