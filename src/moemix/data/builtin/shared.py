"""What the four generated domains share: the ShareGPT turn list, people's names and cities."""

from __future__ import annotations

Turns = list[dict[str, str]]
"""One conversation in ShareGPT form: ``[{"from": "system"|"human"|"gpt", "value": "..."}, ...]``."""

NAMES = (
    "Alice Ben Carlos Dana Elif Farah Gustavo Hana Ivan Jun Keiko Liam Maya Nikhil Olga Priya Quinn Rosa "
    "Sam Tariq Uma Victor Wen Yusuf Zoe Amara Bruno Chloe Diego Emma Felix Grace Hugo Iris Jonas Kofi Lena"
).split()
CITIES = "Lisbon Nairobi Osaka Toronto Lima Oslo Hanoi Dublin Austin Seville Krakow Perth Quito Tbilisi".split()


def conversation(exchanges: list[tuple[str, str]], system: str | None = None) -> Turns:
    """ShareGPT turns: an optional system turn, then each (human, gpt) exchange in order."""
    turns = [{"from": "system", "value": system}] if system else []
    for human, gpt in exchanges:
        turns.append({"from": "human", "value": human})
        turns.append({"from": "gpt", "value": gpt})
    return turns
