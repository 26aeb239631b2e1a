"""The built-in instruction data: deterministic, disjoint splits, well-formed, and correct answers."""

from __future__ import annotations

import collections
import contextlib
import copy
import hashlib
import io
import json
import math
import random
import re

import pytest

from moemix.data.builtin import (
    DOMAINS,
    builtin_records,
    code_task,
    conversation_text,
    math_problem,
    nlp,
    shared,
    write_builtin_jsonl,
)
from moemix.errors import DataError


def _texts(records: list[dict]) -> list[str]:
    return [conversation_text(r) for r in records]


def _gpt_turns(record: dict) -> list[str]:
    return [t["value"] for t in record["conversations"] if t["from"] == "gpt"]


def _human_turns(record: dict) -> list[str]:
    return [t["value"] for t in record["conversations"] if t["from"] == "human"]


def test_domains_and_default_sizes():
    assert DOMAINS == ("dialogue", "nlp", "math", "code")
    for domain in DOMAINS:
        assert len(builtin_records(domain, "train")) == 2000
        assert len(builtin_records(domain, "dev")) == 64
    assert builtin_records("math", "train", n=0) == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_same_arguments_same_records_and_seeds_differ(domain):
    assert builtin_records(domain, "train", n=100, seed=3) == builtin_records(domain, "train", n=100, seed=3)
    assert builtin_records(domain, "dev", seed=3) == builtin_records(domain, "dev", seed=3)
    assert _texts(builtin_records(domain, "train", n=100, seed=3)) != _texts(builtin_records(domain, "train", n=100))
    # The stream is drawn in order, so a smaller n is a prefix of a larger one.
    assert builtin_records(domain, "train", n=40) == builtin_records(domain, "train", n=120)[:40]


def test_global_rng_is_untouched():
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    builtin_records("code", "train", n=50)
    assert random.random() == expected


@pytest.mark.parametrize("domain", DOMAINS)
def test_train_and_dev_never_share_a_conversation(domain):
    train = set(_texts(builtin_records(domain, "train")))
    for seed in (0, 1, 2):
        assert train.isdisjoint(_texts(builtin_records(domain, "dev", n=200, seed=seed)))
    assert set(_texts(builtin_records(domain, "train", n=500, seed=1))).isdisjoint(
        _texts(builtin_records(domain, "dev", n=200, seed=0))
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_records_are_sharegpt_with_valid_role_order(domain):
    for record in builtin_records(domain, "train", n=500) + builtin_records(domain, "dev"):
        assert list(record) == ["conversations"]
        turns = record["conversations"]
        for turn in turns:
            assert set(turn) == {"from", "value"}
            assert isinstance(turn["value"], str) and turn["value"].strip() == turn["value"] and turn["value"]
        roles = [t["from"] for t in turns]
        if roles[0] == "system":
            roles = roles[1:]
        assert roles and len(roles) % 2 == 0
        assert roles == ["human", "gpt"] * (len(roles) // 2)
        assert 1 <= len(roles) // 2 <= 3


@pytest.mark.parametrize("domain", DOMAINS)
def test_conversation_lengths_are_typically_30_to_200_words(domain):
    counts = sorted(
        len(" ".join(t["value"] for t in r["conversations"]).split()) for r in builtin_records(domain, "train", n=500)
    )
    assert 30 <= counts[len(counts) // 2] <= 200
    inside = sum(15 <= c <= 250 for c in counts)
    assert inside >= 0.95 * len(counts)


def test_records_vary_within_a_domain():
    for domain in DOMAINS:
        texts = _texts(builtin_records(domain, "train"))
        assert len(set(texts)) >= 0.9 * len(texts), domain
        records = builtin_records(domain, "train", n=500)
        assert len({_human_turns(r)[0] for r in records}) >= 0.5 * len(records), domain


# --- math ------------------------------------------------------------------------------------------------------

_EQUATION = re.compile(r"(\d+(?:\s*[+−×÷]\s*\d+)+)\s*=\s*(\d+)")
_CONSTANTS = {2, 3, 100}  # twice, mean of three, percent


def _check_solution(question: str, solution_lines: list[str], answer: int) -> None:
    """Each equation is exact, uses only numbers from the question or earlier results, and ends in the answer."""
    known = {int(x) for x in re.findall(r"\d+", question)} | _CONSTANTS
    result = None
    equations = 0
    for line in solution_lines:
        for left, right in _EQUATION.findall(line):
            operands = [int(x) for x in re.findall(r"\d+", left)]
            assert set(operands) <= known, (question, line)
            value = eval(left.replace("−", "-").replace("×", "*").replace("÷", "/"))  # noqa: S307 - digits and ops
            assert value == int(right), line
            result = int(right)
            known.add(result)
            equations += 1
    assert equations >= 1, solution_lines
    assert result == answer


def test_math_problems_are_solved_exactly():
    rng = random.Random(0)
    for _ in range(3000):
        problem = math_problem(rng)
        assert isinstance(problem.answer, int) and problem.answer >= 0
        _check_solution(problem.question, list(problem.steps), problem.answer)


def test_math_records_end_with_a_correct_answer():
    for record in builtin_records("math", "train") + builtin_records("math", "dev"):
        (question,), (solution,) = _human_turns(record), _gpt_turns(record)
        match = re.search(r"\nThe answer is (\d+)\.$", solution)
        assert match, solution
        _check_solution(question, solution.split("\n")[:-1], int(match.group(1)))


# --- code ------------------------------------------------------------------------------------------------------

_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_code_tasks_pass_their_cases():
    rng = random.Random(0)
    kinds = set()
    for _ in range(2000):
        task = code_task(rng)
        namespace: dict = {}
        exec(compile(task.code, task.func_name, "exec"), namespace)  # noqa: S102 - our own generated code
        function = namespace[task.func_name]
        assert task.cases
        for args, expected in task.cases:
            got = function(*copy.deepcopy(args))
            assert got == expected and type(got) is type(expected), (task.code, args, got, expected)
        assert f"`{task.func_name}" in task.prompt
        kinds.add(task.code.split("\n", 1)[1])  # the body without the signature line
    assert len(kinds) >= 25


def test_code_records_hold_valid_python_whose_examples_and_asserts_hold():
    for record in builtin_records("code", "train", n=800):
        blocks = [b for turn in _gpt_turns(record) for b in _BLOCK.findall(turn)]
        assert blocks and blocks[0].startswith("def ")
        namespace: dict = {}
        for block in blocks:
            code = compile(block, "<record>", "exec")
            with contextlib.redirect_stdout(io.StringIO()) as out:
                exec(code, namespace)  # noqa: S102 - asserts in a "How can I test it?" answer run here
            # "print(f(x))  # output" examples must print what they claim.
            shown = re.findall(r"^print\(.*\)  # (.*)$", block, re.M)
            assert out.getvalue() == "".join(f"{line}\n" for line in shown)


# --- nlp -------------------------------------------------------------------------------------------------------


def _check_nlp(task: str, answer: str) -> str:
    """Check one NLP answer against a recomputation from the task text; return the kind of task."""
    if m := re.fullmatch(r"Rewrite the following sentence in uppercase letters:\n(.+)", task):
        assert answer == m.group(1).upper()
        return "upper"
    if m := re.fullmatch(r"Reverse the order of the words in this sentence: (.+)", task):
        assert answer == " ".join(reversed(m.group(1).split()))
        return "reverse"
    if m := re.fullmatch(r"List every number that appears in the text below, in order\.\n\nText: (.+)", task):
        assert answer == ", ".join(re.findall(r"\d+", m.group(1)))
        return "numbers"
    if m := re.fullmatch(r"Extract the dates from this sentence\.\n\n(.+)", task):
        assert answer == "; ".join(re.findall(r"[A-Z][a-z]+ \d{1,2}, \d{4}", m.group(1)))
        return "dates"
    if m := re.fullmatch(
        r"Extract all the person names mentioned in the following sentence, separated by commas\."
        r"\n\n(.+)",
        task,
    ):
        names = [w for w in re.findall(r"[A-Z][a-z]+", m.group(1)) if w in shared.NAMES]
        assert answer == ", ".join(names) and len(names) >= 2
        return "names"
    if m := re.fullmatch(
        r"Rewrite the sentence in the passive voice: (\w+) (\w+) the (.+?)((?: yesterday| last week"
        r"| on Monday)?)\.",
        task,
    ):
        name, past, obj, when = m.groups()
        participles = {p: pp for (p, pp) in nlp._PASSIVE_VERBS}
        assert answer == f"The {obj} was {participles[past]} by {name}{when}."
        return "passive"
    if m := re.fullmatch(r"Shorten this sentence by removing every adjective: (.+)", task):
        words = [w for w in m.group(1).split() if w not in nlp._ADJECTIVES]
        assert answer == " ".join(words) and len(words) == len(m.group(1).split()) - 3
        return "shorten"
    if "positive or negative" in task:
        label = "positive" if answer.lower().startswith(("positive", "the sentiment is positive")) else "negative"
        assert answer.lower().startswith((label, f"the sentiment is {label}"))
        words = set(re.findall(r"[a-z]+", task.lower()))
        assert words & set(nlp._POSITIVE if label == "positive" else nlp._NEGATIVE)
        assert not words & set(nlp._NEGATIVE if label == "positive" else nlp._POSITIVE)
        return "sentiment"
    if "sports" in task and "technology" in task:
        sentence = task.split("\n")[-1].removeprefix("Sentence: ")
        topic = answer.split()[-1]
        patterns = [re.escape(t).replace(r"\{", "{").replace(r"\}", "}") for t in nlp._TOPIC_TEMPLATES[topic]]
        assert any(re.fullmatch(re.sub(r"\{\w+\}", r".+", p), sentence) for p in patterns), (sentence, topic)
        return "topic"
    raise AssertionError(f"no checker for task {task!r}")


def test_name_lists_do_not_overlap_other_capitalized_words():
    others = set(shared.CITIES) | set(nlp._WEEKDAYS) | set(nlp._MONTHS) | {"On", "The"}
    assert not set(shared.NAMES) & others


def test_nlp_answers_are_correct():
    kinds = collections.Counter()
    for record in builtin_records("nlp", "train") + builtin_records("nlp", "dev"):
        (task,), (answer,) = _human_turns(record), _gpt_turns(record)
        kinds[_check_nlp(task, answer)] += 1
    assert set(kinds) == {"upper", "reverse", "numbers", "dates", "names", "passive", "shorten", "sentiment", "topic"}


# --- domains differ --------------------------------------------------------------------------------------------

_STOPWORDS = set("the a an and to of in is it for you i that this with on be your as are at or can by".split())


def _bag(record: dict) -> collections.Counter:
    words = re.findall(r"[a-z_]+", " ".join(t["value"] for t in record["conversations"]).lower())
    return collections.Counter(w for w in words if w not in _STOPWORDS)


def test_domains_have_different_vocabularies():
    top = {}
    for domain in DOMAINS:
        total = collections.Counter()
        for record in builtin_records(domain, "train", n=500):
            total.update(_bag(record))
        top[domain] = {w for w, _ in total.most_common(15)}
    for a in DOMAINS:
        for b in DOMAINS:
            if a < b:
                assert len(top[a] & top[b]) <= 3, (a, b, top[a] & top[b])


def test_a_bag_of_words_centroid_tells_the_domains_apart():
    centroids = {}
    for domain in DOMAINS:
        total = collections.Counter()
        for record in builtin_records(domain, "train", n=300):
            total.update(_bag(record))
        norm = math.sqrt(sum(v * v for v in total.values()))
        centroids[domain] = {w: v / norm for w, v in total.items()}
    correct = total_dev = 0
    for domain in DOMAINS:
        for record in builtin_records(domain, "dev"):
            bag = _bag(record)
            guess = max(DOMAINS, key=lambda d: sum(c * centroids[d].get(w, 0.0) for w, c in bag.items()))
            correct += guess == domain
            total_dev += 1
    assert correct / total_dev >= 0.97


# --- errors and files ------------------------------------------------------------------------------------------


def test_unknown_domain_or_split_is_a_one_line_error_naming_the_valid_ones():
    with pytest.raises(DataError, match="unknown domain 'poetry'; valid domains: dialogue, nlp, math, code"):
        builtin_records("poetry", "train")
    with pytest.raises(DataError, match="unknown split 'test'; valid splits: train, dev"):
        builtin_records("math", "test")
    with pytest.raises(DataError, match="n must be an integer >= 0"):
        builtin_records("math", "train", n=-1)
    try:
        builtin_records("poetry", "train")
    except DataError as error:
        assert "\n" not in str(error)


def test_write_builtin_jsonl_round_trips_and_leaves_no_temp_file(tmp_path):
    path = write_builtin_jsonl("code", "dev", tmp_path / "sub" / "code.dev.jsonl", n=20, seed=5)
    assert path == tmp_path / "sub" / "code.dev.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == builtin_records("code", "dev", n=20, seed=5)
    write_builtin_jsonl("code", "dev", path, n=3)  # overwrite in place
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3
    assert [p.name for p in path.parent.iterdir()] == ["code.dev.jsonl"]
    with pytest.raises(DataError):
        write_builtin_jsonl("poetry", "dev", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
    assert path.stat().st_mode & 0o777 == 0o644  # readable like any data file, not mkstemp's private mode


# The demo's weights and dev losses depend on these exact records: a refactor that changes one byte of the
# generated data shows here, before it shows as a different demo. Regenerate only for an intended change.
PINNED_SHA256 = {
    ("dialogue", "train"): "46382934b0ac267826b8016243d69f3180cf213b64950a2c4c6c7a4ba60fe2a8",
    ("dialogue", "dev"): "755888855d4195d5aa01e091876fe1b1761e279363c455959b5657d2e98148c8",
    ("nlp", "train"): "e485ff7a4874a3a78973ae7eea8d8882e67ed21d1e5749892487dbf3a944c805",
    ("nlp", "dev"): "9e86228c5fdc899f1f193e5fbb8313f7aa837d6a6a1287e30c2e973de13ca1c3",
    ("math", "train"): "3d15df019c5223a75a21336252f3629eb9765d341f3077abfc2153ae91adae81",
    ("math", "dev"): "1a90f217a5bcaeea996ebd0936ebe141b8835ae6c6e2ed56f741000eee8d0b0f",
    ("code", "train"): "e941ab2007865f3d5252a24acebaa890d24c772ad930e224becdc4bd9b5cf4f9",
    ("code", "dev"): "1811b25a794fe6f368e1ef315f56b84557aa9e23f22955ac9b1e16e6f08574f2",
}


@pytest.mark.parametrize(("domain", "split"), sorted(PINNED_SHA256))
def test_default_records_are_byte_identical_to_the_pinned_ones(domain, split, tmp_path):
    path = write_builtin_jsonl(domain, split, tmp_path / f"{domain}.{split}.jsonl")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PINNED_SHA256[(domain, split)]
