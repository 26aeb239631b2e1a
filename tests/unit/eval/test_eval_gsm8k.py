"""GSM8K: the gold and predicted final numbers, exact match, and bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moemix.errors import DataError
from moemix.eval.gsm8k import final_number, gold_number, load_gsm8k, same_number, score

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "math" / "gsm8k_test.jsonl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She has 3 + 4 = 7 apples.\n#### 7", "7"),
        ("The answer is $1,250.", "1250"),
        ("First 12, then 15, so 18 in all.", "18"),
        ("#### -3.5", "-3.5"),
        ("the answer is: 42. Also 7 more words 9", "42"),
        ("no number here", None),
    ],
)
def test_final_number(text, expected):
    assert final_number(text) == expected


def test_gold_and_exact_match():
    assert gold_number("He pays 2*3=<<2*3=6>>6 dollars.\n#### 6") == "6"
    assert gold_number("no final answer") is None
    assert same_number("18", "18.0") and not same_number("18", "19") and not same_number(None, "1")
    problems = [{"gold": "6"}, {"gold": "1000"}, {"gold": "5"}]
    result = score(problems, ["so #### 6", "The answer is 1,000", "I think 4"])
    assert result["correct"] == 2 and result["n"] == 3 and abs(result["exact_match"] - 2 / 3) < 1e-12
    assert [s["correct"] for s in result["samples"]] == [True, True, False]


def test_load_file_and_errors(tmp_path):
    good = {"question": "1+1?", "answer": "1+1=2\n#### 2"}
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    assert [p["gold"] for p in load_gsm8k(path, limit=1)] == ["2"]
    path.write_text(json.dumps(good) + "\n" + json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    with pytest.raises(DataError, match=r"g.jsonl:2: field 'answer': no '#### <number>'"):
        load_gsm8k(path)
    path.write_text("{not json\n")
    with pytest.raises(DataError, match=r"g.jsonl:1: not valid JSON"):
        load_gsm8k(path)


def test_shared_test_file_gold_answers_parse():
    if not SHARED.is_file():
        pytest.skip("../shared/data/math/gsm8k_test.jsonl is not here")
    problems = load_gsm8k(SHARED)
    assert len(problems) == 1319
    # Scoring the reference solutions against themselves: every final number is found.
    assert score(problems, [p["answer"] for p in problems])["exact_match"] == 1.0
