"""report.html opens with a header a person reads (not JSON), a weights table of every dataset, and the plots."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from moemix.report import write_report
from moemix.report.header import describe_model, describe_policy, duration, summary_items
from moemix.report.run_folder import read_run


class Page(HTMLParser):
    """The visible text of a page in order, the headings, and the table rows (cell texts)."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self.rows: list[list[str]] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self.rows[-1].append("")
        if tag == "img":
            self.images.append(dict(attrs)["src"])
            self.stack.pop()  # a void element: no end tag

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        if {"style", "title", "head"} & set(self.stack) or not data.strip():
            return
        self.text.append(data.strip())
        if self.stack and self.stack[-1] in ("h1", "h2", "h3"):
            self.headings.append((self.stack[-1], data.strip()))
        if self.stack and self.stack[-1] in ("td", "th"):
            self.rows[-1][-1] += data.strip()


def parse(path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def looks_like_json(text: str) -> bool:
    try:
        return isinstance(json.loads(text), (dict, list))
    except ValueError:
        return False


@pytest.mark.parametrize("n", [2, 15, 50])
def test_the_report_opens_with_words_not_json(make_run, n):
    run_dir = make_run(n)
    page = parse(write_report(run_dir))
    assert page.headings[0] == ("h1", f"moemix run {run_dir.name}")
    assert not any(looks_like_json(t) or t.startswith("{") for t in page.text)
    header = dict(zip(page.text[2::2], page.text[3::2]))  # after the title and the path: label, value pairs
    assert header["Status"] == "finished"
    assert header["Model"].startswith("tiny mixtral, random init")
    assert header["Policy"] == (
        "dynamic (eta 10, c 0.05, distance l2, criterion mean, source probe, layers last), updated every 20 steps"
    )
    assert header["Datasets"].startswith(f"{n}: ")
    assert header["Steps"] == "600 of 600; 30 mixture updates"
    assert header["Tokens"].endswith(" trained on") and header["Wall time"] == "1 h 02 min"


@pytest.mark.parametrize("n", [4, 50])
def test_the_weights_table_has_every_dataset_and_its_figures(make_run, n):
    run_dir = make_run(n)
    page = parse(write_report(run_dir))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    head, *body = page.rows[: n + 1]
    assert head == [
        "dataset",
        "start weight",
        "final weight",
        "time-averaged weight",
        "share of draws",
        "tokens",
        "dev loss start",
        "dev loss end",
        "change",
    ]
    assert [row[0] for row in body] == list(metrics["weights"])
    for row in body:
        name = row[0]
        assert float(row[2]) == pytest.approx(metrics["weights"][name], abs=5e-5)
        assert int(row[5].replace(",", "")) == metrics["tokens_seen"][name]
        assert float(row[8]) == pytest.approx(
            metrics[f"eval/{name}/loss"] - metrics[f"eval_initial/{name}/loss"], abs=5e-5
        )
    assert len(page.images) == 5 and all(src.startswith("data:image/png;base64,") for src in page.images)


def test_an_unfinished_run_says_so_and_leaves_out_what_it_has_not_measured(make_run):
    run_dir = make_run(4, finished=False)
    page = parse(write_report(run_dir))
    header = dict(zip(page.text[2::2], page.text[3::2]))
    assert header["Status"].startswith("not finished")
    assert "Wall time" not in header and "Tokens" not in header
    assert page.rows[0] == ["dataset", "start weight", "final weight", "time-averaged weight"]
    assert len(page.images) == 3


def test_a_run_without_config_file_still_reports(make_run):
    run_dir = make_run(3)
    (run_dir / "run_config.yaml").unlink()
    labels = [label for label, _ in summary_items(read_run(run_dir))]
    assert "Model" not in labels and "Policy" not in labels and "Datasets" in labels
    assert parse(write_report(run_dir)).headings[0][1] == f"moemix run {run_dir.name}"


def test_policy_lines_name_the_knobs_the_policy_reads():
    assert describe_policy({"policy": "uniform", "eta": 10.0, "interval": 100}) == "uniform, updated every 100 steps"
    assert describe_policy({"policy": "odm", "odm_alpha": 0.9, "eta": 10.0, "interval": 50}) == (
        "odm (odm_alpha 0.9), updated every 50 steps"
    )
    line = describe_policy(
        {
            "policy": "dynamic",
            "eta": 5.0,
            "c": 0.1,
            "source": "online",
            "layers": [-1, -2],
            "load_ema": 0.5,
            "count_prompt_tokens": False,
            "floor": 0.01,
            "ceiling": 1.0,
        }
    )
    assert line == (
        "dynamic (eta 5, c 0.1, source online, layers [-1, -2], load_ema 0.5, "
        "loads of assistant tokens only, floor 0.01)"
    )
    assert describe_policy({"policy": "static", "weights": {"a": 0.7, "b": 0.3}}) == "static (weights a 0.7, b 0.3)"


def test_model_lines():
    assert describe_model(
        {
            "name_or_path": "builtin:smollm2",
            "upcycle": {"experts": 8, "top_k": 2, "layers": "all", "mode": "copy"},
            "lora": {"r": 16},
        }
    ) == ("builtin:smollm2; upcycled to 8 experts, top-2, layers all, copy; LoRA r=16")


@pytest.mark.parametrize("seconds, text", [(8.44, "8.4 s"), (252, "4 min 12 s"), (11100, "3 h 05 min")])
def test_durations(seconds, text):
    assert duration(seconds) == text
