"""code: the kinds of Python task the built-in code domain draws from, each with a reference solution and cases."""

from __future__ import annotations

import collections
import math
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Spec:
    """One task kind's instance: the function to write, its body, cases and explanation."""

    name: str
    params: str
    does: str  # third person, completes "The function ..."; its first word ends in "s" ("returns", "checks")
    body: str  # indented four spaces
    cases: tuple[tuple[tuple[Any, ...], Any], ...]
    explanation: str
    complexity: str = "O(n) time, where n is the length of the input, because it looks at each element once"


_WORDS = "apple banana river stone cloud garden pencil window orange tiger music yellow planet island".split()


def _body(*lines: str) -> str:
    return "\n".join(f"    {line}" for line in lines)


def _ints(rng: random.Random, lo: int = -20, hi: int = 60) -> list[int]:
    return [rng.randint(lo, hi) for _ in range(rng.randint(3, 6))]


def _c_sum(rng: random.Random) -> Spec:
    arg = rng.choice(("numbers", "values", "nums"))
    if rng.random() < 0.5:
        body = _body("total = 0", f"for x in {arg}:", "    total += x", "return total")
        how = "adds each number to a running total"
    else:
        body, how = _body(f"return sum({arg})"), "uses the built-in sum function"
    return Spec(
        name=rng.choice(("sum_list", "list_total", "add_all")),
        params=arg,
        does="returns the sum of all the numbers in a list",
        body=body,
        cases=tuple(((xs,), sum(xs)) for xs in (_ints(rng), _ints(rng), [])),
        explanation=f"The function {how}; an empty list gives 0.",
    )


def _c_reverse(rng: random.Random) -> Spec:
    arg = rng.choice(("s", "text", "word"))
    if rng.random() < 0.5:
        body, how = _body(f"return {arg}[::-1]"), "uses slicing with a step of -1"
    else:
        body, how = _body(f'return "".join(reversed({arg}))'), "joins the characters produced by reversed()"
    texts = (rng.choice(_WORDS), " ".join(rng.sample(_WORDS, 2)), "")
    return Spec(
        name=rng.choice(("reverse_string", "reverse_text", "backwards")),
        params=arg,
        does="returns the given string reversed",
        body=body,
        cases=tuple(((t,), t[::-1]) for t in texts),
        explanation=f"It {how} to build the reversed string.",
    )


def _c_vowels(rng: random.Random) -> Spec:
    arg = rng.choice(("text", "s", "sentence"))
    if rng.random() < 0.5:
        body = _body(f'return sum(1 for ch in {arg}.lower() if ch in "aeiou")')
    else:
        body = _body(
            "count = 0", f"for ch in {arg}.lower():", '    if ch in "aeiou":', "        count += 1", "return count"
        )
    texts = (" ".join(rng.sample(_WORDS, 2)).capitalize(), rng.choice(_WORDS).upper(), "rhythm")
    return Spec(
        name=rng.choice(("count_vowels", "vowel_count")),
        params=arg,
        does="counts the vowels (a, e, i, o, u) in a string, ignoring case",
        body=body,
        cases=tuple(((t,), sum(1 for ch in t.lower() if ch in "aeiou")) for t in texts),
        explanation='It lowercases the string and counts the characters found in "aeiou".',
    )


def _c_fizzbuzz(rng: random.Random) -> Spec:
    a, b = rng.choice(((3, 5), (2, 7), (3, 4), (4, 6), (2, 5)))
    w1, w2 = rng.choice((("Fizz", "Buzz"), ("Foo", "Bar"), ("Ping", "Pong")))
    body = _body(
        "result = []",
        "for i in range(1, n + 1):",
        f"    if i % {a} == 0 and i % {b} == 0:",
        f'        result.append("{w1}{w2}")',
        f"    elif i % {a} == 0:",
        f'        result.append("{w1}")',
        f"    elif i % {b} == 0:",
        f'        result.append("{w2}")',
        "    else:",
        "        result.append(str(i))",
        "return result",
    )

    def reference(n: int) -> list[str]:
        return [
            w1 + w2 if i % a == 0 and i % b == 0 else w1 if i % a == 0 else w2 if i % b == 0 else str(i)
            for i in range(1, n + 1)
        ]

    return Spec(
        name=rng.choice(("fizzbuzz", f"{w1.lower()}_{w2.lower()}")),
        params="n",
        does=f'returns a list of strings for the numbers 1 to n, using "{w1}" for multiples of {a}, "{w2}" for '
        f'multiples of {b}, "{w1}{w2}" for multiples of both, and the number itself otherwise',
        body=body,
        cases=tuple(((n,), reference(n)) for n in (b + 1, a * b + rng.randint(0, 3), 0)),
        explanation="It checks the combined case first, so multiples of both numbers get both words.",
        complexity="O(n) time, because it builds one string per number",
    )


def _c_maximum(rng: random.Random) -> Spec:
    arg = rng.choice(("numbers", "values", "items"))
    return Spec(
        name=rng.choice(("find_max", "largest", "max_value")),
        params=arg,
        does="returns the largest number in a non-empty list without using max()",
        body=_body(f"best = {arg}[0]", f"for x in {arg}[1:]:", "    if x > best:", "        best = x", "return best"),
        cases=tuple(((xs,), max(xs)) for xs in (_ints(rng), _ints(rng, -90, -1), [rng.randint(0, 9)])),
        explanation="It keeps the best value seen so far and updates it when a larger one appears.",
    )


def _c_palindrome(rng: random.Random) -> Spec:
    arg = rng.choice(("text", "s", "phrase"))
    texts = (
        rng.choice(("Racecar", "Never odd or even", "Step on no pets", "Was it a car or a cat I saw?")),
        rng.choice(_WORDS).capitalize(),
        rng.choice(("A man, a plan, a canal: Panama", "No lemon, no melon")),
    )

    def reference(text: str) -> bool:
        kept = "".join(ch for ch in text.lower() if ch.isalnum())
        return kept == kept[::-1]

    return Spec(
        name=rng.choice(("is_palindrome", "check_palindrome")),
        params=arg,
        does="checks whether a string reads the same backwards, ignoring case, spaces and punctuation",
        body=_body(f"cleaned = [ch.lower() for ch in {arg} if ch.isalnum()]", "return cleaned == cleaned[::-1]"),
        cases=tuple(((t,), reference(t)) for t in texts),
        explanation="It keeps only letters and digits, lowercases them, and compares the list with its reverse.",
    )


def _c_factorial(rng: random.Random) -> Spec:
    if rng.random() < 0.5:
        body = _body("result = 1", "for i in range(2, n + 1):", "    result *= i", "return result")
        explanation = "It multiplies the numbers from 2 to n; 0! and 1! are 1."
    else:
        body = _body("if n <= 1:", "    return 1", "return n * factorial(n - 1)")
        explanation = "It calls itself on n - 1 until it reaches the base case n <= 1, which returns 1."
    return Spec(
        name="factorial",
        params="n",
        does="returns the factorial of a non-negative integer n",
        body=body,
        cases=tuple(((n,), math.factorial(n)) for n in (rng.randint(2, 12), 0, 1)),
        explanation=explanation,
        complexity="O(n) time, because it performs one multiplication per number up to n",
    )


def _c_fibonacci(rng: random.Random) -> Spec:
    fib = [0, 1]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])
    return Spec(
        name=rng.choice(("fibonacci", "nth_fibonacci", "fib")),
        params="n",
        does="returns the n-th Fibonacci number, with fib(0) = 0 and fib(1) = 1",
        body=_body("a, b = 0, 1", "for _ in range(n):", "    a, b = b, a + b", "return a"),
        cases=tuple(((n,), fib[n]) for n in (rng.randint(5, 39), 0, 1)),
        explanation="It walks forward n times, keeping only the last two numbers of the sequence.",
        complexity="O(n) time and O(1) extra space",
    )


def _c_frequency(rng: random.Random) -> Spec:
    arg = rng.choice(("text", "sentence"))
    cases: list[tuple[tuple[Any, ...], Any]] = [(("",), {})]
    for _ in range(2):
        words = [rng.choice(_WORDS[:5]) for _ in range(rng.randint(3, 6))]
        text = " ".join(w.capitalize() if rng.random() < 0.3 else w for w in words)
        cases.insert(0, ((text,), dict(collections.Counter(words))))
    return Spec(
        name=rng.choice(("word_frequency", "count_words")),
        params=arg,
        does="returns a dictionary mapping each lowercase word of a string to the number of times it appears",
        body=_body(
            "counts = {}",
            f"for word in {arg}.lower().split():",
            "    counts[word] = counts.get(word, 0) + 1",
            "return counts",
        ),
        cases=tuple(cases),
        explanation="It splits the text on whitespace and counts each lowercased word with dict.get.",
        complexity="O(n) time in the length of the text",
    )


def _c_multiples(rng: random.Random) -> Spec:
    arg = rng.choice(("numbers", "nums"))
    cases = []
    for _ in range(3):
        xs, k = _ints(rng, 0, 40), rng.randint(2, 7)
        cases.append(((xs, k), [x for x in xs if x % k == 0]))
    return Spec(
        name=rng.choice(("filter_multiples", "multiples_of", "keep_divisible")),
        params=f"{arg}, k",
        does="returns the numbers from a list that are divisible by k, in their original order",
        body=_body(f"return [x for x in {arg} if x % k == 0]"),
        cases=tuple(cases),
        explanation="The list comprehension keeps x only when x % k is zero.",
    )


def _c_celsius(rng: random.Random) -> Spec:
    return Spec(
        name=rng.choice(("celsius_to_fahrenheit", "c_to_f", "to_fahrenheit")),
        params="celsius",
        does="converts a temperature from Celsius to Fahrenheit",
        body=_body("return celsius * 9 / 5 + 32"),
        cases=tuple(((c,), c * 9 / 5 + 32) for c in (100, -40, 5 * rng.randint(-8, 20))),
        explanation="It applies the formula F = C * 9 / 5 + 32.",
        complexity="O(1) time, since it is a single formula",
    )


def _c_prime(rng: random.Random) -> Spec:
    def reference(n: int) -> bool:
        return n >= 2 and all(n % d for d in range(2, n))

    return Spec(
        name=rng.choice(("is_prime", "check_prime")),
        params="n",
        does="returns True if n is a prime number and False otherwise",
        body=_body(
            "if n < 2:",
            "    return False",
            "i = 2",
            "while i * i <= n:",
            "    if n % i == 0:",
            "        return False",
            "    i += 1",
            "return True",
        ),
        cases=tuple(((n,), reference(n)) for n in (rng.choice((7, 13, 29, 97, 101)), rng.randint(4, 200), 1)),
        explanation="It tries divisors up to the square root of n: a larger factor would pair with a smaller one.",
        complexity="O(sqrt(n)) time",
    )


def _c_dedupe(rng: random.Random) -> Spec:
    arg = rng.choice(("items", "values"))
    lists = (_ints(rng, 0, 6), [rng.choice(_WORDS[:4]) for _ in range(5)], [])
    return Spec(
        name=rng.choice(("remove_duplicates", "unique_in_order", "dedupe")),
        params=arg,
        does="removes duplicates from a list while keeping the first occurrence of each item in order",
        body=_body(
            "seen = set()",
            "result = []",
            f"for x in {arg}:",
            "    if x not in seen:",
            "        seen.add(x)",
            "        result.append(x)",
            "return result",
        ),
        cases=tuple(((xs,), list(dict.fromkeys(xs))) for xs in lists),
        explanation="A set remembers what was already seen, and the result list keeps the original order.",
    )


def _c_gcd(rng: random.Random) -> Spec:
    cases = []
    for _ in range(3):
        g = rng.randint(1, 12)
        x, y = g * rng.randint(1, 20), g * rng.randint(1, 20)
        cases.append(((x, y), math.gcd(x, y)))
    return Spec(
        name=rng.choice(("gcd", "greatest_common_divisor")),
        params="a, b",
        does="returns the greatest common divisor of two positive integers using Euclid's algorithm",
        body=_body("while b:", "    a, b = b, a % b", "return a"),
        cases=tuple(cases),
        explanation="Each step replaces (a, b) with (b, a % b); when b reaches zero, a holds the answer.",
        complexity="O(log(min(a, b))) time",
    )


def _c_title_case(rng: random.Random) -> Spec:
    arg = rng.choice(("text", "sentence"))
    texts = (" ".join(rng.sample(_WORDS, 3)), " ".join(rng.sample(_WORDS, 2)).upper(), "")
    return Spec(
        name=rng.choice(("capitalize_words", "title_case")),
        params=arg,
        does="capitalizes the first letter of every word, making the other letters lowercase",
        body=_body(f'return " ".join(word.capitalize() for word in {arg}.split())'),
        cases=tuple(((t,), " ".join(w.capitalize() for w in t.split())) for t in texts),
        explanation="It splits the string into words, capitalizes each one, and joins them with single spaces.",
    )


def _c_running_total(rng: random.Random) -> Spec:
    arg = rng.choice(("numbers", "values"))
    lists = (_ints(rng, 0, 20), _ints(rng, -10, 10), [])
    return Spec(
        name=rng.choice(("running_total", "cumulative_sum", "prefix_sums")),
        params=arg,
        does="returns a list where each element is the sum of all numbers up to that position",
        body=_body(
            "totals = []",
            "total = 0",
            f"for x in {arg}:",
            "    total += x",
            "    totals.append(total)",
            "return totals",
        ),
        cases=tuple(((xs,), [sum(xs[: i + 1]) for i in range(len(xs))]) for xs in lists),
        explanation="It keeps a running total and appends it after adding each number.",
    )


def _c_count_char(rng: random.Random) -> Spec:
    if rng.random() < 0.5:
        body = _body("return text.count(char)")
    else:
        body = _body("count = 0", "for c in text:", "    if c == char:", "        count += 1", "return count")
    cases = []
    for _ in range(3):
        text, char = " ".join(rng.sample(_WORDS, 2)), rng.choice("aeinorst")
        cases.append(((text, char), sum(1 for c in text if c == char)))
    return Spec(
        name=rng.choice(("count_char", "count_occurrences")),
        params="text, char",
        does="counts how many times a given character appears in a string",
        body=body,
        cases=tuple(cases),
        explanation="It compares every character of the text with the one we are looking for.",
    )


def _c_average(rng: random.Random) -> Spec:
    arg = rng.choice(("numbers", "scores", "values"))
    cases: list[tuple[tuple[Any, ...], Any]] = []
    for _ in range(2):
        xs = _ints(rng, 0, 100)
        xs[-1] += -sum(xs) % len(xs)  # a whole-number mean prints cleanly in the examples
        cases.append(((xs,), sum(xs) / len(xs)))
    cases.append((([],), 0.0))
    return Spec(
        name=rng.choice(("average", "mean", "list_average")),
        params=arg,
        does="returns the average of a list of numbers, or 0.0 for an empty list",
        body=_body(f"if not {arg}:", "    return 0.0", f"return sum({arg}) / len({arg})"),
        cases=tuple(cases),
        explanation="It divides the sum by the count, after handling the empty list so that it never divides by zero.",
    )


def _c_anagram(rng: random.Random) -> Spec:
    pairs = (
        rng.choice((("listen", "silent"), ("Dormitory", "dirty room"), ("The eyes", "they see"))),
        (rng.choice(_WORDS), rng.choice(_WORDS)[::-1].capitalize()),
        ("apple", "paper"),
    )

    def reference(x: str, y: str) -> bool:
        return collections.Counter(x.replace(" ", "").lower()) == collections.Counter(y.replace(" ", "").lower())

    return Spec(
        name=rng.choice(("is_anagram", "are_anagrams")),
        params="a, b",
        does="checks whether two strings are anagrams of each other, ignoring spaces and case",
        body=_body(
            'clean_a = sorted(a.replace(" ", "").lower())',
            'clean_b = sorted(b.replace(" ", "").lower())',
            "return clean_a == clean_b",
        ),
        cases=tuple(((x, y), reference(x, y)) for x, y in pairs),
        explanation="Two strings are anagrams when their sorted letters are equal.",
        complexity="O(n log n) time, because of the sorting",
    )


CODE_KINDS = (
    _c_sum,
    _c_reverse,
    _c_vowels,
    _c_fizzbuzz,
    _c_maximum,
    _c_palindrome,
    _c_factorial,
    _c_fibonacci,
    _c_frequency,
    _c_multiples,
    _c_celsius,
    _c_prime,
    _c_dedupe,
    _c_gcd,
    _c_title_case,
    _c_running_total,
    _c_count_char,
    _c_average,
    _c_anagram,
)
