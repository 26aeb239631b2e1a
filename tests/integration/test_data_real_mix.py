"""configs/real_mix.yaml on the real public files in ../shared/data: every record read in its published format,
`moemix data validate` passes, and a short `moemix train` runs (skipped where ../shared/data is absent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from moemix.cli import main
from moemix.config import load_config
from moemix.data.load import read_examples
from moemix.data.readers import resolve_sources
from moemix.data.validate import SplitReport

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "real_mix.yaml"
SHARED = ROOT.parent / "shared" / "data"

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"real data folder {SHARED} is absent (see its SOURCES.md)")


@pytest.fixture
def in_repo(monkeypatch, cache):
    monkeypatch.chdir(ROOT)  # the config's paths are relative to the repository root


# Row counts from ../shared/data/SOURCES.md; invalid = records that break a rule (Code Alpaca: two empty outputs).
EXPECTED = {"sharegpt": (1500, 0), "orca": (2061 + 1084, 0), "math": (7473, 0), "code": (2017, 2)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_record_is_read_in_its_published_format(in_repo, name):
    config = load_config(CONFIG)
    ds = next(d for d in config.datasets if d.name == name)
    report = SplitReport()
    examples = read_examples(ds, resolve_sources(ds.path), "train", report)
    assert (report.records, report.invalid) == EXPECTED[name]
    assert len(examples) == report.records - report.invalid
    for example in examples:
        roles = [m["role"] for m in example.messages]
        assert roles[0] == "user" and roles[-1] == "assistant" and roles[-2] == "user"
        assert all(m["content"].strip() for m in example.messages if m["role"] == "assistant")
    if name == "orca":  # both files in one dataset; literal \n became line breaks; the answer follows the rationale
        assert not any("\\n" in m["content"] for e in examples for m in e.messages)
        qasc = next(e for e in examples if e.place.endswith("flan_cot_qasc_train.tsv:1")).messages
        assert qasc[0]["content"].startswith(
            "What is the process by which living things give rise to offspring?\nOptions:\n- (A) DNA\n"
        )
        assert qasc[1]["content"].endswith("give rise to offspring. So the answer is (D).")
    if name == "math":
        assert examples[0].messages[1]["content"].endswith("#### 72")


@pytest.mark.slow
def test_validate_passes_and_a_short_train_runs(in_repo, capsys, tmp_path):
    # Cold: validate reads and tokenises everything (about 25 s on 2 cores) and fills the cache; train reuses it.
    assert main(["data", "validate", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "OK: 2 invalid record(s) will be skipped and counted" in out
    for name in EXPECTED:
        assert sum(line.startswith(f"{name} ") for line in out.splitlines()) == 2
    assert out.count("(tokenised splits read from the cache)") == 0
    run = tmp_path / "run"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    assert main(["train", str(CONFIG), "--max_steps", "5", f"--output_dir={run}", "--disable_tqdm", "true"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 5 and set(metrics["weights"]) == set(EXPECTED)
    assert all(metrics[f"eval/{name}/loss"] < 20 for name in EXPECTED)
