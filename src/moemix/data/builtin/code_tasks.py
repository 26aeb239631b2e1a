"""code: evol-codealpaca-like Python tasks; the expected outputs come from a reference computation."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from moemix.data.builtin.code_kinds import CODE_KINDS
from moemix.data.builtin.shared import Turns, conversation


@dataclass(frozen=True)
class CodeTask:
    """A small Python function to write, with its solution and test cases.

    Attributes:
        prompt: The request, as the user writes it.
        code: The function's source, a complete ``def``.
        func_name: The function's name.
        cases: ``(args, expected)`` pairs: ``func_name(*args) == expected``.
        explanation: One or two sentences on how the code works.
        complexity: The time complexity, as a phrase (``"O(n) time, ..."``).
    """

    prompt: str
    code: str
    func_name: str
    cases: tuple[tuple[tuple[Any, ...], Any], ...]
    explanation: str
    complexity: str


def _call(name: str, args: tuple[Any, ...]) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


def code_task(rng: random.Random) -> CodeTask:
    """Draw one small Python task with its solution and test cases.

    Args:
        rng: The source of every random choice.

    Returns:
        The task; ``exec(task.code)`` defines ``task.func_name``, which passes every case in ``task.cases``.
    """
    spec = rng.choice(CODE_KINDS)(rng)
    signature = f"{spec.name}({spec.params})"
    prompt = rng.choice(
        (
            f"Write a Python function `{signature}` that {spec.does}.",
            f"Implement `{signature}` in Python. The function {spec.does}.",
            f"I need a Python function called `{spec.name}` that {spec.does}. Could you write it for me?",
            f"Create a function `{signature}` in Python which {spec.does}.",
            f"Develop a Python function named `{spec.name}` that {spec.does}.",
        )
    )
    args, expected = spec.cases[0]
    if rng.random() < 0.6:
        prompt += f" For example, `{_call(spec.name, args)}` should return `{expected!r}`."
    docstring = rng.random() < 0.5
    if rng.random() < 0.3:
        prompt += " Include a docstring."
        docstring = True
    header = f"def {signature}:\n"
    if docstring:
        verb, _, rest = spec.does.partition(" ")
        header += f'    """{verb[:-1].capitalize()} {rest}."""\n'  # "returns ..." -> "Return ..."
    return CodeTask(prompt, header + spec.body, spec.name, spec.cases, spec.explanation, spec.complexity)


def code_conversation(rng: random.Random) -> Turns:
    """One Python coding request answered with code in a ```python block, sometimes with a follow-up.

    Args:
        rng: The source of every random choice.

    Returns:
        The turns, in ShareGPT form.
    """
    task = code_task(rng)
    intro = rng.choice(
        (
            "Here is a Python function that does this:",
            "Sure! Here's a simple implementation:",
            "You can solve this with a short function:",
        )
    )
    answer = f"{intro}\n\n```python\n{task.code}\n```\n\n{task.explanation}"
    args, expected = task.cases[0]
    if rng.random() < 0.5:
        # The comment shows what print() writes, so it is str(), not repr().
        answer += f"\n\nExample usage:\n\n```python\nprint({_call(task.func_name, args)})  # {expected}\n```"
    exchanges = [(task.prompt, answer)]
    roll = rng.random()
    if roll < 0.2:
        exchanges.append(("What is the time complexity of this function?", f"It runs in {task.complexity}."))
    elif roll < 0.4:
        asserts = "\n".join(f"assert {_call(task.func_name, a)} == {e!r}" for a, e in task.cases)
        exchanges.append(
            (
                "How can I test it?",
                f"You can check it with a few assertions:\n\n```python\n{asserts}\n"
                "```\n\nIf all of them pass, the function behaves as expected.",
            )
        )
    system = "You are an expert Python programmer." if rng.random() < 0.2 else None
    return conversation(exchanges, system)
