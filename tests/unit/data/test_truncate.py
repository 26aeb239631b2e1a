"""truncation: left|right cuts the prompt, not the answer; drop (the default) cuts the end and drops lost answers."""

from __future__ import annotations

import random

import pytest

from moemix.data.render import IGNORE_INDEX
from moemix.data.tokenized import Example, tokenize_examples
from moemix.data.tokenizer import IM_END
from moemix.data.truncate import fit_prompt
from moemix.data.validate import SplitReport
from moemix.testing import builtin_tokenizer

WORDS = "river stone cloud garden pencil window orange tiger music yellow planet island".split()


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return builtin_tokenizer(("dialogue",), 60, vocab_size=500, cache_dir=tmp_path_factory.mktemp("tok"), extra=WORDS)


def _length(tok, messages, generation_prompt=False):
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return len(tok(text, add_special_tokens=False)["input_ids"])


def _text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _chat(rng, prompt_words, answer_words, earlier=0, system=True):
    messages = [{"role": "system", "content": "Be brief."}] if system else []
    for i in range(earlier):
        messages += [
            {"role": "user", "content": f"old question {i} " + _text(rng, 20)},
            {"role": "assistant", "content": f"old answer {i}"},
        ]
    return messages + [
        {"role": "user", "content": "Summarise: " + _text(rng, prompt_words)},
        {"role": "assistant", "content": "Summary: " + _text(rng, answer_words)},
    ]


def test_a_conversation_that_fits_is_left_alone(tok):
    messages = _chat(random.Random(0), 5, 3)
    assert fit_prompt(tok, messages, _length(tok, messages), "left") is None


@pytest.mark.parametrize("side", ["left", "right"])
def test_the_last_prompt_gives_up_its_oldest_or_newest_text_and_the_answer_fits_whole(tok, side):
    messages = _chat(random.Random(1), 200, 10)
    fitted = fit_prompt(tok, messages, 96, side)
    assert _length(tok, fitted) <= 96
    assert fitted[0] == messages[0] and fitted[-1] == messages[-1]  # system and answer untouched
    before, after = messages[-2]["content"], fitted[-2]["content"]
    assert len(after) < len(before) and after.strip()
    assert before.endswith(after) if side == "left" else before.startswith(after)
    assert after.startswith("Summarise:") == (side == "right")  # right keeps the instruction, left its tail


def test_left_drops_earlier_exchanges_before_cutting_the_last_prompt(tok):
    messages = _chat(random.Random(2), 20, 5, earlier=3)
    fitted = fit_prompt(tok, messages, _length(tok, messages) - 10, "left")
    assert fitted == messages[:1] + messages[3:]  # the oldest exchange went, whole; nothing else changed


def test_a_long_answer_leaves_the_prompt_half_of_max_length(tok):
    messages = _chat(random.Random(3), 200, 200)
    fitted = fit_prompt(tok, messages, 128, "left")
    prompt = _length(tok, fitted[:-1], generation_prompt=True)
    assert 64 - 2 <= prompt <= 64  # a cut lands on token boundaries of the text, not of the render


@pytest.mark.parametrize("seed", range(3))
def test_every_fitted_example_keeps_its_whole_answer(tok, seed):
    # Answers shorter than half of max_length: the prompt makes all the room they need.
    rng = random.Random(seed)
    examples = [
        Example(
            f"f:{i}",
            _chat(rng, rng.randint(1, 300), rng.randint(1, 8), earlier=rng.randint(0, 2), system=rng.random() < 0.5),
        )
        for i in range(24)
    ]
    lengths = [_length(tok, e.messages) for e in examples]
    end = tok.convert_tokens_to_ids(IM_END)
    dropped, left = SplitReport(), SplitReport()
    as_drop = tokenize_examples(examples, tok, 96, dropped)
    as_left = tokenize_examples(examples, tok, 96, left, truncation="left")
    long = sum(n > 96 for n in lengths)
    assert long and left.prompt_cut == long and dropped.prompt_cut == 0
    assert len(as_left) == len(examples) and left.truncated == left.truncated_away == 0
    assert dropped.truncated_away > 0 and len(as_drop) == len(examples) - dropped.truncated_away
    for ids, labels in zip(as_left.input_ids, as_left.labels):
        learnt = labels[labels != IGNORE_INDEX]
        assert len(ids) <= 96 and learnt[-1] == end and ids[-1] == end  # the last answer, to its end-of-turn
    assert left.length["max"] == max(lengths)  # lengths are reported before truncation
