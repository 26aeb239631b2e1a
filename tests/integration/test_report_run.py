"""Plots and report.html from a real (tiny) run: every plot is a PNG, the report embeds them all."""

from __future__ import annotations

import re

import pytest

from moemix.cli import main
from moemix.config import load_config
from moemix.errors import MoemixError
from moemix.report import plot_run, write_report
from moemix.report.plots import PLOTS
from moemix.testing import schema_policy_config
from moemix.train import prepare_run

CONFIG = schema_policy_config(max_examples=60, max_steps=6)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    prepare_run(load_config(text=CONFIG, overrides=[f"--output_dir={root / 'run'}"])).train()
    return root / "run"


def test_training_leaves_every_plot(run_dir):
    for name in PLOTS:
        data = (run_dir / "plots" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000, name


def test_report_is_self_contained(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    assert capsys.readouterr().out.strip().endswith("report.html")
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(PLOTS)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    for name in ("dialogue", "math", "code"):
        assert f"<td>{name}</td>" in page
    assert page.count("<tr>") >= 3 + 3 + 1  # dataset rows, one row per update (3), headers


def test_report_of_a_folder_without_run(tmp_path):
    with pytest.raises(MoemixError, match="not a moemix run folder"):
        plot_run(tmp_path)
    with pytest.raises(MoemixError, match="not a moemix run folder"):
        write_report(tmp_path)


def test_replay_with_the_runs_knobs_reproduces_its_weights(run_dir):
    from moemix.files import read_jsonl
    from moemix.report.replay import replay

    rows = replay(
        run_dir / "mixture.jsonl",
        {
            "name": "dynamic",
            "eta": 10.0,
            "c": 0.05,
            "distance": "l2",
            "criterion": "mean",
            "noise_aware": False,
            "noise_z": 1.0,
        },
    )
    logged = read_jsonl(run_dir / "mixture.jsonl")
    assert [r["step"] for r in rows] == [r["step"] for r in logged]
    for row, record in zip(rows, logged):
        for name, w in record["weights"].items():
            assert abs(row["weights"][name] - w) < 1e-12
    bolder = replay(
        run_dir,
        {
            "name": "dynamic",
            "eta": 40.0,
            "c": 0.05,
            "distance": "l2",
            "criterion": "mean",
            "noise_aware": False,
            "noise_z": 1.0,
        },
    )
    spread = lambda r: max(r["weights"].values()) - min(r["weights"].values())  # noqa: E731
    assert spread(bolder[-1]) > spread(rows[-1])


def test_replay_command_defaults_to_the_runs_knobs(run_dir, capsys):
    import json

    from moemix.files import read_jsonl

    logged = read_jsonl(run_dir / "mixture.jsonl")
    capsys.readouterr()
    assert main(["replay", str(run_dir), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["weights"] for r in rows] == [r["weights"] for r in logged]
    assert main(["replay", str(run_dir), "--eta", "40"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[-1] == "replayed dynamic (logged)" and len(table.splitlines()) == len(logged) + 2


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--policy", "uniform"], "argument --policy: invalid choice: 'uniform'"),
        (["--eta", "-1"], "--eta: must be >= 0, got -1.0"),
        (["--eta", "abc"], "--eta: expected float (a number such as 0.1 or 2e-5), got str 'abc'"),
        (["--distance", "manhattan"], "argument --distance: invalid choice: 'manhattan'"),
        (["--policy", "refloss"], "--policy: policy refloss needs mixing.reference"),
        (["--etta", "3"], "unknown flag --etta; did you mean --eta?"),
        (["--policy", "odm"], "logs no train_loss signal, which policy odm reads"),
    ],
)
def test_replay_bad_flags_are_one_line(run_dir, capsys, flags, expected):
    assert main(["replay", str(run_dir), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("moemix: error: ") and expected in err, err


def test_export_weights_formats(run_dir, capsys):
    import json

    from moemix.files import read_jsonl

    final = read_jsonl(run_dir / "mixture.jsonl")[-1]["weights"]
    assert main(["export-weights", str(run_dir), "--format", "hf"]) == 0
    hf = json.loads((run_dir / "weights.hf.json").read_text())
    assert hf["datasets"] == list(final) and hf["probabilities"] == pytest.approx(list(final.values()), abs=2e-6)
    assert abs(sum(hf["probabilities"]) - 1) < 1e-12  # six decimals that sum to exactly 1
    assert main(["export-weights", str(run_dir), "--format", "llamafactory", "--average"]) == 0
    text = (run_dir / "weights.llamafactory.yaml").read_text()
    probs = [float(x) for x in text.split("interleave_probs: ")[1].split(",")]
    assert abs(sum(probs) - 1) < 1e-12 and "dataset: dialogue,math,code" in text
    assert main(["export-weights", str(run_dir), "--format", "megatron"]) == 0
    assert (run_dir / "weights.megatron.txt").read_text().startswith("--data-path ")
    capsys.readouterr()
    assert main(["export-weights", str(run_dir), "--format", "parquet"]) == 2
    assert "unknown format 'parquet'" in capsys.readouterr().err
