"""Tokenised examples: render each conversation with the chat template, label its assistant tokens, fit it.

An example is one usable record: its place and chat messages. Tokenising renders it with the tokenizer's chat
template, marks the tokens of the assistant turns as labels, and fits it into ``max_length``: the prompt is
shortened first when the dataset's ``truncation`` is ``left`` or ``right`` (:mod:`moemix.data.truncate`), then
the example is cut at ``max_length``, and dropped if no assistant token is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from moemix.data.render import IGNORE_INDEX, assistant_spans
from moemix.data.truncate import fit_prompt
from moemix.data.validate import TRUNCATED_AWAY, Problem, SplitReport

_BATCH = 256  # conversations tokenised per call: lets a fast tokenizer use its threads


@dataclass
class TokenizedSplit:
    """The tokenised examples of one split of one dataset."""

    name: str
    input_ids: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    truncated_away: int = 0
    """Examples dropped because truncation removed all their assistant tokens."""

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_tokens(self) -> int:
        return int(sum(len(x) for x in self.input_ids))


@dataclass
class Example:
    """One usable record: where it came from and its chat messages."""

    place: str
    messages: list[dict[str, str]]


def _labelled(
    ids: list[int], offsets: list[tuple[int, int]], spans: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Input ids and labels: a token is learnt when it starts inside an assistant span."""
    ids = np.asarray(ids, dtype=np.int32)
    starts = np.fromiter((a for a, _ in offsets), dtype=np.int64, count=len(offsets))
    inside = np.zeros(len(ids), dtype=bool)
    for a, b in spans:
        inside |= (starts >= a) & (starts < b)
    return ids, np.where(inside, ids, IGNORE_INDEX).astype(np.int32)


def tokenize_examples(
    examples: list[Example],
    tokenizer,
    max_length: int,
    report: SplitReport,
    desc: str = "tokenize",
    truncation: str = "drop",
) -> TokenizedSplit:
    """Tokenise examples with the tokenizer's chat template; labels only on assistant tokens.

    Conversations are rendered one by one (the chat template is Python) and tokenised in batches. The result
    equals :func:`moemix.data.render.tokenize_conversation` example by example, except that with ``truncation``
    ``left`` or ``right`` an example longer than ``max_length`` first has its prompt shortened
    (:func:`~moemix.data.truncate.fit_prompt`, counted as ``prompt_cut``). An example still longer is cut at
    ``max_length``; one whose assistant tokens all lie beyond it is dropped and counted as ``truncated away``.

    Returns:
        The split (its name is set by the caller).
    """
    out = TokenizedSplit("")
    full_lengths = []
    for start in tqdm(range(0, len(examples), _BATCH), desc=desc, leave=False, disable=None):
        chunk = examples[start : start + _BATCH]
        rendered = [assistant_spans(tokenizer, e.messages) for e in chunk]
        enc = tokenizer([text for text, _ in rendered], add_special_tokens=False, return_offsets_mapping=True)
        for example, (_, spans), ids, offsets in zip(chunk, rendered, enc["input_ids"], enc["offset_mapping"]):
            full_length = len(ids)
            fitted = None
            if full_length > max_length and truncation != "drop":
                fitted = fit_prompt(tokenizer, example.messages, max_length, truncation)
            if fitted is not None:
                text, spans = assistant_spans(tokenizer, fitted)
                one = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
                ids, offsets = one["input_ids"], one["offset_mapping"]
            ids, labels = _labelled(ids, offsets, spans)
            if not (labels[:max_length] != IGNORE_INDEX).any():
                report.add_problem(
                    Problem(
                        example.place,
                        f"{example.place}: every assistant token lies beyond max_length={max_length} "
                        f"(the example has {full_length} tokens); dropped",
                        TRUNCATED_AWAY,
                    )
                )
                continue
            full_lengths.append(full_length)
            report.prompt_cut += fitted is not None
            report.truncated += len(ids) > max_length
            if len(ids) > max_length:  # copies, so the untruncated arrays are freed
                ids, labels = ids[:max_length].copy(), labels[:max_length].copy()
            out.input_ids.append(ids)
            out.labels.append(labels)
    _fill_counts(out, report)
    report.set_lengths(full_lengths)
    return out


def _fill_counts(split: TokenizedSplit, report: SplitReport) -> None:
    split.truncated_away = report.truncated_away
    report.examples = len(split)
    report.tokens = split.num_tokens
    report.label_tokens = int(sum(int((x != IGNORE_INDEX).sum()) for x in split.labels))
