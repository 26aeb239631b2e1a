"""math: MetaMathQA-like word problems; every step is an equation "a op b = c" that the code computed."""

from __future__ import annotations

import random
from dataclasses import dataclass

from moemix.data.builtin.shared import NAMES, Turns, conversation


@dataclass(frozen=True)
class MathProblem:
    """A word problem with its worked solution.

    Attributes:
        question: The problem text.
        steps: Sentences of the solution, each holding one equation such as ``3 × 5 = 15``.
        answer: The final number; the last equation's result.
    """

    question: str
    steps: tuple[str, ...]
    answer: int


_ITEMS = ("apples", "marbles", "stickers", "pencils", "cookies", "stamps", "seashells", "trading cards", "oranges")
_CONTAINERS = ("bags", "boxes", "packs", "jars")


def _m_containers(rng: random.Random) -> MathProblem:
    name, item, box = rng.choice(NAMES), rng.choice(_ITEMS), rng.choice(_CONTAINERS)
    a, b, c = rng.randint(2, 30), rng.randint(2, 9), rng.randint(2, 12)
    question = rng.choice(
        (
            f"{name} has {a} {item}. {name} buys {b} {box} with {c} {item} in each. "
            f"How many {item} does {name} have now?",
            f"{name} starts with {a} {item} and then gets {b} {box} of {item}. Each one holds {c} {item}. What is the "
            f"total number of {item} {name} has?",
        )
    )
    return MathProblem(
        question,
        (f"The {box} hold {b} × {c} = {b * c} {item}.", f"In total {name} has {a} + {b * c} = {a + b * c} {item}."),
        a + b * c,
    )


def _m_give_away(rng: random.Random) -> MathProblem:
    name, item = rng.choice(NAMES), rng.choice(_ITEMS)
    each, friends = rng.randint(2, 8), rng.randint(2, 6)
    start = each * friends + rng.randint(1, 40)
    question = (
        f"{name} had {start} {item} and gave {each} {item} to each of {friends} friends. How many {item} are left?"
    )
    given = each * friends
    return MathProblem(
        question,
        (
            f"{name} gives away {each} × {friends} = {given} {item}.",
            f"{name} has {start} − {given} = {start - given} {item} left.",
        ),
        start - given,
    )


def _m_wages(rng: random.Random) -> MathProblem:
    name = rng.choice(NAMES)
    rate, hours, days = rng.randint(8, 30), rng.randint(2, 9), rng.randint(2, 7)
    question = rng.choice(
        (
            f"{name} earns {rate} dollars per hour and works {hours} hours a day for {days} days. How much does {name} "
            "earn?",
            f"If {name} works {hours} hours each day for {days} days at {rate} dollars an hour, how many dollars does "
            f"{name} make in total?",
        )
    )
    daily = rate * hours
    steps = (
        f"Each day {name} earns {rate} × {hours} = {daily} dollars.",
        f"Over {days} days that is {daily} × {days} = {daily * days} dollars.",
    )
    return MathProblem(question, steps, daily * days)


def _m_share(rng: random.Random) -> MathProblem:
    item = rng.choice(_ITEMS)
    kids, each = rng.randint(2, 12), rng.randint(3, 15)
    eaten = rng.randint(1, each - 1)
    total = kids * each
    question = (
        f"{total} {item} are shared equally among {kids} children. Each child then gives {eaten} away. How "
        f"many {item} does each child have left?"
    )
    return MathProblem(
        question,
        (
            f"Each child first gets {total} ÷ {kids} = {each} {item}.",
            f"After giving some away, each has {each} − {eaten} = {each - eaten} {item}.",
        ),
        each - eaten,
    )


def _m_distance(rng: random.Random) -> MathProblem:
    vehicle = rng.choice(("train", "bus", "car", "ferry"))
    speed, hours, extra = rng.randrange(30, 95, 5), rng.randint(2, 6), rng.randint(5, 60)
    question = (
        f"A {vehicle} travels at {speed} kilometers per hour for {hours} hours, then another {extra} "
        f"kilometers. How far does it travel altogether?"
    )
    first = speed * hours
    return MathProblem(
        question,
        (
            f"In the first part it covers {speed} × {hours} = {first} kilometers.",
            f"Altogether it travels {first} + {extra} = {first + extra} kilometers.",
        ),
        first + extra,
    )


def _m_age(rng: random.Random) -> MathProblem:
    younger, older = rng.sample(NAMES, 2)
    age, more = rng.randint(5, 20), rng.randint(1, 10)
    question = (
        f"{younger} is {age} years old. {older} is {more} years older than twice {younger}'s age. How old is {older}?"
    )
    return MathProblem(
        question,
        (
            f"Twice {younger}'s age is 2 × {age} = {2 * age}.",
            f"So {older} is {2 * age} + {more} = {2 * age + more} years old.",
        ),
        2 * age + more,
    )


def _m_rectangle(rng: random.Random) -> MathProblem:
    length = rng.randint(3, 40)
    width = rng.randint(2, length)
    place = rng.choice(("garden", "playground", "room", "field"))
    if rng.random() < 0.5:
        question = f"A {place} is {length} meters long and {width} meters wide. What is its perimeter in meters?"
        half = length + width
        return MathProblem(
            question,
            (
                f"Length plus width is {length} + {width} = {half} meters.",
                f"The perimeter is 2 × {half} = {2 * half} meters.",
            ),
            2 * half,
        )
    tiles = rng.randint(2, 5)
    question = (
        f"A {place} is {length} meters long and {width} meters wide. Each square meter needs {tiles} tiles. "
        f"How many tiles are needed?"
    )
    area = length * width
    return MathProblem(
        question,
        (
            f"The area is {length} × {width} = {area} square meters.",
            f"The tiles needed are {area} × {tiles} = {area * tiles}.",
        ),
        area * tiles,
    )


def _m_discount(rng: random.Random) -> MathProblem:
    thing = rng.choice(("jacket", "bicycle", "lamp", "pair of boots", "guitar"))
    price, percent = rng.randrange(20, 420, 20), rng.choice((10, 20, 25, 50))
    off = price * percent // 100  # exact: price is a multiple of 20 and percent divides into it
    question = f"A {thing} costs {price} dollars and is on sale for {percent}% off. What is the sale price in dollars?"
    return MathProblem(
        question,
        (
            f"The discount is {price} × {percent} ÷ 100 = {off} dollars.",
            f"The sale price is {price} − {off} = {price - off} dollars.",
        ),
        price - off,
    )


def _m_reading(rng: random.Random) -> MathProblem:
    name = rng.choice(NAMES)
    per_day, days = rng.randint(5, 40), rng.randint(2, 10)
    read = per_day * days
    pages = read + rng.randint(10, 200)
    question = (
        f"{name} reads {per_day} pages a day. The book has {pages} pages. How many pages are left after {days} days?"
    )
    return MathProblem(
        question,
        (
            f"In {days} days {name} reads {per_day} × {days} = {read} pages.",
            f"The pages left are {pages} − {read} = {pages - read}.",
        ),
        pages - read,
    )


def _m_average(rng: random.Random) -> MathProblem:
    name = rng.choice(NAMES)
    scores = [rng.randint(50, 99) for _ in range(3)]
    scores[2] += -sum(scores) % 3  # a whole-number mean keeps every step an integer equation
    total = sum(scores)
    question = f"{name} scored {scores[0]}, {scores[1]} and {scores[2]} on three tests. What is the average score?"
    return MathProblem(
        question,
        (
            f"The total is {scores[0]} + {scores[1]} + {scores[2]} = {total}.",
            f"The average is {total} ÷ 3 = {total // 3}.",
        ),
        total // 3,
    )


def _m_unknown(rng: random.Random) -> MathProblem:
    x, factor, added = rng.randint(2, 20), rng.randint(2, 9), rng.randint(1, 30)
    result = factor * x + added
    question = (
        f"When a number is multiplied by {factor} and then {added} is added, the result is {result}. What is "
        f"the number?"
    )
    return MathProblem(
        question,
        (
            f"First undo the addition: {result} − {added} = {result - added}.",
            f"Then undo the multiplication: {result - added} ÷ {factor} = {x}.",
        ),
        x,
    )


def _m_savings(rng: random.Random) -> MathProblem:
    name = rng.choice(NAMES)
    weekly, weeks, saved = rng.randint(5, 25), rng.randint(2, 12), rng.randint(5, 60)
    cost = saved + weekly * weeks
    thing = rng.choice(("bike", "tablet", "skateboard", "telescope"))
    question = (
        f"{name} wants a {thing} that costs {cost} dollars and already has {saved} dollars. If {name} saves "
        f"{weekly} dollars each week, how many weeks will it take to afford the {thing}?"
    )
    return MathProblem(
        question,
        (
            f"{name} still needs {cost} − {saved} = {cost - saved} dollars.",
            f"That takes {cost - saved} ÷ {weekly} = {weeks} weeks.",
        ),
        weeks,
    )


_MATH_KINDS = (
    _m_containers,
    _m_give_away,
    _m_wages,
    _m_share,
    _m_distance,
    _m_age,
    _m_rectangle,
    _m_discount,
    _m_reading,
    _m_average,
    _m_unknown,
    _m_savings,
)


def math_problem(rng: random.Random) -> MathProblem:
    """Draw one word problem of a random kind, with its solution steps and answer.

    Args:
        rng: The source of every random choice.

    Returns:
        The problem; its steps' equations are exact and the last one yields the answer.
    """
    return rng.choice(_MATH_KINDS)(rng)


def math_conversation(rng: random.Random) -> Turns:
    """One math word problem answered step by step, ending with ``The answer is N.``.

    Args:
        rng: The source of every random choice.

    Returns:
        The turns, in ShareGPT form.
    """
    problem = math_problem(rng)
    opener = rng.choice(
        ("Let's solve this step by step.", "We can work it out step by step.", "Let's think step by step.")
    )
    if rng.random() < 0.5:
        steps = "\n".join(f"Step {i + 1}: {step}" for i, step in enumerate(problem.steps))
    else:
        steps = "\n".join(problem.steps)
    solution = f"{opener}\n{steps}\nThe answer is {problem.answer}."
    system = "You are a math tutor. Explain your reasoning." if rng.random() < 0.1 else None
    return conversation([(problem.question, solution)], system)
