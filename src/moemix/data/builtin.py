"""A built-in, deterministic instruction data set in four domains, for the offline demo and the tests.

The four domains are small stand-ins for the four data types of "Dynamic Data Mixing Maximizes Instruction
Tuning for MoE": everyday dialogue (ShareGPT), NLP tasks (OpenOrca), math word problems (MetaMathQA) and Python
code (evol-codealpaca). Each record is in ShareGPT form::

    {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}, ...]}

Every answer is correct for its question by construction: math steps and code are computed, not written.
The domains use clearly different words and layouts so that a router has something to tell apart.

Train and dev are disjoint whatever ``n`` and ``seed``: a conversation belongs to dev when a hash of its text
falls in one bucket of eight, and each split keeps only the conversations of its own buckets.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moemix.errors import DataError

DOMAINS: tuple[str, ...] = ("dialogue", "nlp", "math", "code")
SPLITS: tuple[str, ...] = ("train", "dev")
DEFAULT_N: dict[str, int] = {"train": 2000, "dev": 64}

# One hash bucket in _DEV_BUCKETS is dev: dev costs ~8 draws per record, train ~1.14, both cheap.
_DEV_BUCKETS = 8


def conversation_text(record: dict) -> str:
    """The text of a record that decides its split: roles and values, one turn a line.

    Args:
        record: A ShareGPT record, ``{"conversations": [{"from": ..., "value": ...}, ...]}``.

    Returns:
        The turns joined as ``role: value`` lines.
    """
    return "\n".join(f"{turn['from']}: {turn['value']}" for turn in record["conversations"])


def builtin_records(domain: str, split: str, n: int | None = None, seed: int = 0) -> list[dict]:
    """Generate ``n`` ShareGPT records of one domain, the same ones for the same arguments.

    Args:
        domain: One of :data:`DOMAINS`.
        split: ``"train"`` or ``"dev"``; no conversation text appears in both, for any ``n`` and ``seed``.
        n: How many records; defaults to 2000 for train and 64 for dev.
        seed: Picks another sample of the same distribution.

    Returns:
        A list of ``{"conversations": [...]}`` dicts: an optional system turn, then human and gpt turns
        alternating, ending with gpt.

    Raises:
        DataError: If the domain or split is unknown, or ``n`` is not an integer >= 0.
    """
    _check_names(domain, split)
    if n is None:
        n = DEFAULT_N[split]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"builtin data: n must be an integer >= 0, got {n!r}")
    rng = _rng(domain, split, seed)
    generate = _GENERATORS[domain]
    records: list[dict] = []
    attempts = 0
    while len(records) < n:
        attempts += 1
        # A generator whose outputs all fell in one bucket would loop forever; this bound is far above need.
        assert attempts <= 100 * n + 1000, f"builtin {domain}: cannot fill the {split} split"
        record = {"conversations": generate(rng)}
        if _split_of(conversation_text(record)) == split:
            records.append(record)
    return records


def write_builtin_jsonl(
    domain: str, split: str, path: str | os.PathLike[str], n: int | None = None, seed: int = 0
) -> Path:
    """Write :func:`builtin_records` as JSON Lines, atomically (a reader never sees half a file).

    Args:
        domain: One of :data:`DOMAINS`.
        split: ``"train"`` or ``"dev"``.
        path: The file to write; its parent folders are created.
        n: How many records; defaults as in :func:`builtin_records`.
        seed: As in :func:`builtin_records`.

    Returns:
        The path written.

    Raises:
        DataError: If the domain or split is unknown, or ``n`` is not an integer >= 0.
    """
    records = builtin_records(domain, split, n=n, seed=seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; the data file should read like any other
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_names(domain: str, split: str) -> None:
    if domain not in _GENERATORS:
        raise DataError(f"builtin data: unknown domain {domain!r}; valid domains: {', '.join(DOMAINS)}")
    if split not in SPLITS:
        raise DataError(f"builtin data: unknown split {split!r}; valid splits: {', '.join(SPLITS)}")


def _rng(domain: str, split: str, seed: int) -> random.Random:
    # sha256 rather than hash(): str hashes are salted per process, and streams must not depend on it.
    digest = hashlib.sha256(f"moemix.builtin/{domain}/{split}/{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _split_of(text: str) -> str:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return "dev" if int.from_bytes(digest, "big") % _DEV_BUCKETS == 0 else "train"


# ---------------------------------------------------------------------------------------------------------
# Shared pieces

Turns = list[dict[str, str]]

_NAMES = (
    "Alice Ben Carlos Dana Elif Farah Gustavo Hana Ivan Jun Keiko Liam Maya Nikhil Olga Priya Quinn Rosa "
    "Sam Tariq Uma Victor Wen Yusuf Zoe Amara Bruno Chloe Diego Emma Felix Grace Hugo Iris Jonas Kofi Lena"
).split()
_CITIES = "Lisbon Nairobi Osaka Toronto Lima Oslo Hanoi Dublin Austin Seville Krakow Perth Quito Tbilisi".split()


def _conversation(exchanges: list[tuple[str, str]], system: str | None = None) -> Turns:
    turns = [{"from": "system", "value": system}] if system else []
    for human, gpt in exchanges:
        turns.append({"from": "human", "value": human})
        turns.append({"from": "gpt", "value": gpt})
    return turns


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# ---------------------------------------------------------------------------------------------------------
# dialogue: everyday ShareGPT-like chat (greetings, recommendations, planning, advice), 1-3 exchanges

_PARTS_OF_DAY = ("morning", "afternoon", "evening")
_SPANS = ("weekend", "holidays", "evening", "week ahead")
_ACTIVITIES = (
    "a long walk", "the gym", "a yoga class", "the farmers market", "a picnic in the park", "a bike ride",
    "my cousin's wedding", "a concert", "a swim at the lake",
)
_PLANS = {  # plan: (a comment on it, a tip for it)
    "visiting my grandparents": (
        "Spending time with family is always special.", "bring a small gift or some homemade snacks"),
    "trying a new hiking trail": (
        "Fresh air and a bit of exercise can really lift your mood.", "wear comfortable shoes and bring water"),
    "learning to bake bread": (
        "There's nothing like the smell of fresh bread at home.", "be patient and let the dough rise fully"),
    "having a movie night with friends": (
        "That's such a cozy way to relax together.", "pick a film everyone agrees on ahead of time"),
    "cleaning out my closet": (
        "Clearing out clutter can feel surprisingly refreshing.", "donate the clothes you no longer wear"),
    "going to the beach": ("A day by the sea sounds so relaxing.", "pack sunscreen and a hat"),
    "painting my bedroom": (
        "A fresh color can make a room feel brand new.", "keep the windows open while the paint dries"),
    "visiting an art museum": (
        "Museums are a lovely place to slow down and get inspired.", "check the opening hours before you go"),
}
_GENRES = {
    "mystery": ("a detective chasing a stolen painting through {city}", "a village where everyone hides a secret"),
    "science fiction": ("a crew exploring a distant ocean planet", "a robot who slowly learns to paint"),
    "comedy": ("two roommates who accidentally open a bakery", "a family wedding where everything goes wrong"),
    "fantasy": ("a young mapmaker who finds a hidden kingdom", "a dragon who is afraid of heights"),
    "history": ("the builders of an old library in {city}", "a sailor's journey across the Atlantic"),
}
_CATEGORIES = {"book": "read", "movie": "seen", "podcast": "heard", "TV series": "watched"}
_OCCASIONS = ("a long flight", "a rainy weekend", "a quiet evening at home", "a family gathering", "my daily commute")
_TITLE_WORDS = (
    "Silent Hidden Golden Last Wandering Forgotten Crimson Paper Lonely Secret".split(),
    "Harbor Orchard Lantern Garden Compass River Kingdom Letters Mountain Station".split(),
)
_QUALITIES = ("charming", "gripping", "heartfelt", "clever", "beautifully made", "surprisingly funny")
_TRIP_DAYS = (
    "explore the old town on foot and try a local bakery",
    "visit the main museum in the morning and relax in a park in the afternoon",
    "take a boat tour or a day trip to the countryside",
    "wander through the markets and pick up a few souvenirs",
    "join a food tour to taste the local dishes",
    "hike up to a viewpoint and stay for the sunset",
)
_PARTY_STEPS = (
    "Pick a date and a place, and quietly check that {name} is free that day.",
    "Make a guest list and invite people through a private group chat.",
    "Choose a simple theme and some decorations in {name}'s favorite colors.",
    "Order a cake or ask a friend who loves baking to make one.",
    "Ask someone close to {name} to bring them over at the right time.",
)
_STUDY_HABITS = (
    "Review your notes for a short while every day.",
    "Test yourself with practice questions instead of only rereading.",
    "Explain the hardest topics out loud, as if you were teaching a friend.",
    "Keep the last few days for revision and rest.",
    "Study with a friend once a week to stay motivated.",
)
_ADVICE = {
    "sleep better": (
        "Go to bed and wake up at the same time every day.", "Keep your bedroom cool, dark and quiet.",
        "Put your phone away an hour before bed.", "Avoid coffee in the late afternoon.",
        "Try a short breathing exercise when you lie down.",
    ),
    "manage stress at work": (
        "Take short breaks and step away from your desk.", "Write down your tasks and tackle one at a time.",
        "Talk to a friend or colleague you trust.", "Go for a walk during lunch.",
        "Say no to extra work when your plate is already full.",
    ),
    "start running": (
        "Begin with short runs mixed with walking.", "Get a pair of comfortable running shoes.",
        "Run at an easy pace where you could still chat.", "Rest between runs so your body can recover.",
        "Find a friend or a club to keep you motivated.",
    ),
    "cook more at home": (
        "Plan a few simple meals for the week.", "Keep basics like rice, pasta and eggs in the kitchen.",
        "Cook a double portion and save leftovers for lunch.", "Learn one new recipe each week.",
        "Make cooking fun by playing music or inviting a friend.",
    ),
    "keep houseplants alive": (
        "Check the soil with your finger before watering.", "Put each plant where it gets the right amount of light.",
        "Use pots with drainage holes.", "Remove yellow leaves so the plant stays healthy.",
        "Water less often in winter.",
    ),
    "learn a new language": (
        "Practice a little every day instead of a lot once a week.", "Listen to songs and podcasts in the language.",
        "Find a conversation partner online.", "Label things around your home with their names.",
        "Don't be afraid of making mistakes.",
    ),
}


def _dialogue_small_talk(rng: random.Random) -> list[tuple[str, str]]:
    name, part, span = rng.choice(_NAMES), rng.choice(_PARTS_OF_DAY), rng.choice(_SPANS)
    activity = rng.choice(_ACTIVITIES)
    opener = rng.choice((
        "Hi! How are you doing today?",
        f"Hey there, how is your {part} going?",
        f"Good {part}! I just got back from {activity} and felt like chatting.",
        f"Hello! My name is {name}. Nice to meet you!",
        f"Hi, I'm feeling a little bored this {part}. Want to chat for a while?",
    ))
    to_name = f", {name}" if name in opener else ""
    if activity in opener:
        reply = f"Welcome back! How was {activity}? I hope you had a lovely time. What's next on your list?"
    else:
        reply = rng.choice((
            f"Hi{to_name}! I'm doing well, thanks for asking. How about you? Anything fun planned for the {span}?",
            f"Hello{to_name}! It's nice to hear from you. I'd love to chat. What's on your mind this {part}?",
            f"Hey{to_name}! Thanks for stopping by. I hope your {part} has been relaxing. What have you been up to?",
        ))
    exchanges = [(opener, reply)]
    if rng.random() < 0.7:
        plan = rng.choice(list(_PLANS))
        comment, tip = _PLANS[plan]
        if activity in opener:
            follow_up = f"It was great, thanks! Next I'm thinking about {plan} this {span}. What do you think?"
        else:
            follow_up = rng.choice((
                f"I'm good, thanks. I'm thinking about {plan} this {span}. What do you think?",
                f"Not much yet, but I might end up {plan}. Does that sound like a good idea?",
            ))
        exchanges.append((
            follow_up,
            f"That sounds like a wonderful idea! {comment} Just remember to {tip}. I hope you have a great time.",
        ))
        if rng.random() < 0.5:
            exchanges.append((
                rng.choice(("Thanks, that's kind of you. Talk to you later!", "Great tip, thanks! Bye for now.")),
                f"You're welcome! Enjoy your {span} and feel free to come back anytime.",
            ))
    return exchanges


def _title(rng: random.Random) -> str:
    return f"The {rng.choice(_TITLE_WORDS[0])} {rng.choice(_TITLE_WORDS[1])}"


def _dialogue_recommendation(rng: random.Random) -> list[tuple[str, str]]:
    category, genre, occasion = rng.choice(list(_CATEGORIES)), rng.choice(list(_GENRES)), rng.choice(_OCCASIONS)
    city = rng.choice(_CITIES)
    first, second = (t.format(city=city) for t in rng.sample(_GENRES[genre], 2))
    title, other = _title(rng), _title(rng)
    while other == title:
        other = _title(rng)
    ask = rng.choice((
        f"Can you recommend a good {genre} {category} for {occasion}?",
        f"I'm looking for a {category} to enjoy during {occasion}. I really like {genre}. Any suggestions?",
        f"What {genre} {category} would you suggest for {occasion}?",
    ))
    why = rng.choice((
        "Many people love it because the characters feel so real.",
        f"It's easy to get lost in, which makes it perfect for {occasion.replace('my ', 'your ')}.",
        "The ending is truly memorable.",
    ))
    quality = rng.choice(_QUALITIES)
    answer = f'Sure! You might enjoy "{title}". It\'s a {quality} {genre} {category} about {first}. {why}'
    exchanges = [(ask, answer)]
    if rng.random() < 0.7:
        exchanges.append(rng.choice((
            ("Have you got something a little lighter?",
             f'Of course! Try "{other}". It\'s more playful, a gentle story about {second}, and it never feels heavy.'),
            (f"I've already {_CATEGORIES[category]} that one. Anything else?",
             f'No problem! How about "{other}"? It\'s a {rng.choice(_QUALITIES)} {category} about {second}.'),
        )))
        if rng.random() < 0.5:
            exchanges.append(("Thanks! I'll give it a try.",
                              "Great choice! I hope you enjoy it. Let me know what you think afterwards."))
    return exchanges


def _dialogue_planning(rng: random.Random) -> list[tuple[str, str]]:
    name, city = rng.choice(_NAMES), rng.choice(_CITIES)
    kind = rng.randrange(3)
    if kind == 0:
        days = rng.randint(2, 4)
        company = rng.choice(("my partner", "two friends", "my parents", "my kids", "a coworker"))
        plan = "\n".join(f"- Day {i + 1}: {act}" for i, act in enumerate(rng.sample(_TRIP_DAYS, days)))
        exchanges = [(
            f"I'm planning a {days}-day trip to {city} with {company}. Can you help me make a plan?",
            f"I'd be happy to help! Here's a simple plan:\n{plan}\nLeave some free time each day so the trip "
            "doesn't feel rushed.",
        )]
        if rng.random() < 0.6:
            season, tip = rng.choice((
                ("summer", "bring light clothes and a refillable water bottle"),
                ("winter", "pack a warm coat, gloves and a scarf"),
                ("spring", "bring a light jacket and an umbrella for sudden showers"),
                ("autumn", "pack layers, since mornings can be chilly"),
            ))
            exchanges.append((
                f"We're going in {season}. What should I pack?",
                f"For {city} in {season}, {tip}. Comfortable walking shoes are a must, and don't forget chargers "
                "and any travel documents.",
            ))
        return exchanges
    if kind == 1:
        weekday = rng.choice(("Friday", "Saturday", "Sunday"))
        chosen = sorted(rng.sample(range(len(_PARTY_STEPS)), 3))  # the steps keep their natural order
        steps = "\n".join(f"{i + 1}. {_PARTY_STEPS[j].format(name=name)}" for i, j in enumerate(chosen))
        return [(
            f"I want to throw a surprise party for my friend {name} next {weekday}. Where do I start?",
            f"What a lovely idea! Start with these steps:\n{steps}\nMost of all, relax and enjoy the moment with "
            f"{name}.",
        )]
    subject = rng.choice(("history", "biology", "French", "chemistry", "economics", "music theory", "geography"))
    weeks = rng.randint(2, 6)
    ask = rng.choice((
        f"I have my {subject} exam in {weeks} weeks and I feel lost. How should I plan my studying?",
        f"My {subject} final is {weeks} weeks away. Can you help me make a study plan?",
        f"How do I get ready for my {subject} exam? It's in {weeks} weeks.",
    ))
    habits = " ".join(rng.sample(_STUDY_HABITS, 2))
    return [(
        ask,
        f"Don't worry, {weeks} weeks is enough time if you plan well. Split the material into {weeks} parts and "
        f"cover one part each week. {habits} A good night's sleep before the exam matters more than a last-minute "
        "cram.",
    )]


def _dialogue_advice(rng: random.Random) -> list[tuple[str, str]]:
    goal = rng.choice(list(_ADVICE))
    tips = rng.sample(_ADVICE[goal], 3)
    ask = rng.choice((
        f"Do you have any advice on how to {goal}?",
        f"I've been struggling to {goal} lately. Any tips?",
        f"What are some easy ways to {goal}?",
    ))
    opener = rng.choice((
        "Absolutely, here are a few ideas that help many people:",
        "That's a common challenge, and small changes can make a big difference:",
        "Sure! You could try these:",
    ))
    closer = rng.choice((
        "Start with one change at a time and be kind to yourself.",
        "Give it a couple of weeks and notice how you feel.",
    ))
    numbered = "\n".join(f"{i + 1}. {tip}" for i, tip in enumerate(tips))
    exchanges = [(ask, f"{opener}\n{numbered}\n{closer}")]
    if rng.random() < 0.6:
        exchanges.append(rng.choice((
            ("Which one should I try first?",
             f"I'd start with the first one: {_lower_first(tips[0])} It's simple, and it makes the others easier."),
            ("Thanks, that's really helpful!", f"You're very welcome! I'm sure you'll be able to {goal}. Good luck!"),
        )))
    return exchanges


def dialogue_conversation(rng: random.Random) -> Turns:
    """One everyday conversation of 1-3 exchanges, sometimes under a short system prompt.

    Args:
        rng: The source of every random choice.

    Returns:
        The turns, in ShareGPT form.
    """
    make = rng.choice((_dialogue_small_talk, _dialogue_recommendation, _dialogue_planning, _dialogue_advice))
    exchanges = make(rng)
    system = "You are a friendly and helpful assistant." if rng.random() < 0.15 else None
    return _conversation(exchanges, system)


# ---------------------------------------------------------------------------------------------------------
# nlp: OpenOrca-like tasks (classify, extract, rewrite) with checkable answers, usually under a system prompt

_NLP_SYSTEMS = (
    "You are an AI assistant. User will give you a task. Your goal is to complete the task as faithfully as you can.",
    "You are an AI assistant that follows instruction extremely well. Help as much as you can.",
    "You are a helpful assistant, who always provide explanation.",
)
_REVIEW_SUBJECTS = ("blender", "pair of headphones", "hotel", "novel", "film", "laptop", "cafe", "backpack", "sofa")
_REVIEW_ASPECTS = ("service", "battery life", "plot", "staff", "price", "design", "sound quality", "packaging")
_POSITIVE = ("excellent", "delightful", "wonderful", "superb", "impressive", "fantastic", "pleasant", "reliable")
_NEGATIVE = ("terrible", "disappointing", "awful", "poor", "frustrating", "mediocre", "unreliable", "dreadful")
_COMPANIES = ("Northwind", "Bluepeak", "Orbitek", "Greenfield Foods", "Solara", "Vantage Labs", "Kestrel Motors")
_TOPIC_TEMPLATES = {
    "sports": (
        "The {city} Rovers won the championship after a late goal by {name}.",
        "{name} set a new national record in the 400 meters on {weekday}.",
        "Fans in {city} celebrated as their team beat its rivals in overtime.",
    ),
    "business": (
        "Shares of {company} rose after the firm reported higher quarterly profits.",
        "{company} announced plans to open a new factory near {city}.",
        "Investors reacted calmly to the decision by {company} to cut prices.",
    ),
    "science": (
        "Researchers in {city} discovered a new species of frog in a remote cave.",
        "A team led by Dr. {name} measured the age of a distant galaxy.",
        "Biologists in {city} found that bees can recognize human faces.",
    ),
    "technology": (
        "{company} released a phone with a faster chip and a longer battery life.",
        "Engineers at {company} unveiled software that translates speech in real time.",
        "A new update lets users in {city} pay with their smartwatch.",
    ),
}
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_PLACES = ("library", "train station", "bakery", "museum", "stadium", "harbor", "town hall")
_PASSIVE_VERBS = {  # past tense, past participle, objects that make sense with the verb
    ("painted", "painted"): ("fence", "portrait", "garden shed"),
    ("wrote", "written"): ("letter", "report", "song"),
    ("baked", "baked"): ("cake", "bread", "apple pie"),
    ("fixed", "fixed"): ("bicycle", "radio", "leaking tap"),
    ("built", "built"): ("treehouse", "bridge", "bookshelf"),
    ("found", "found"): ("wallet", "old map", "missing key"),
    ("drew", "drawn"): ("map", "picture", "plan"),
    ("delivered", "delivered"): ("package", "speech", "pizza"),
}
_ADJECTIVES = ("small", "quiet", "bright", "old", "friendly", "curious", "tall", "lazy", "noisy", "gentle", "young")
_AGENTS = ("dog", "teacher", "robot", "farmer", "child", "cat", "pilot", "neighbor")
_TARGETS = ("ball", "bird", "stranger", "bus", "kite", "squirrel", "visitor")
_ACTIONS = ("followed", "watched", "chased", "greeted", "passed")
_SPOTS = ("river", "market", "bridge", "fountain", "garden", "school")


def _topic_sentence(rng: random.Random) -> tuple[str, str]:
    topic = rng.choice(list(_TOPIC_TEMPLATES))
    sentence = rng.choice(_TOPIC_TEMPLATES[topic]).format(
        city=rng.choice(_CITIES), name=rng.choice(_NAMES), company=rng.choice(_COMPANIES),
        weekday=rng.choice(_WEEKDAYS),
    )
    return sentence, topic


def _nlp_sentiment(rng: random.Random) -> tuple[str, str]:
    label = rng.choice(("positive", "negative"))
    adj1, adj2 = rng.sample(_POSITIVE if label == "positive" else _NEGATIVE, 2)
    subject, aspect = rng.choice(_REVIEW_SUBJECTS), rng.choice(_REVIEW_ASPECTS)
    review = rng.choice((
        f"The {subject} was {adj1}, and the {aspect} was {adj2}.",
        f"I found the {aspect} of this {subject} {adj1}; overall the experience felt {adj2}.",
        f"Honestly, the {subject} is {adj1} and its {aspect} is {adj2}.",
    ))
    task = rng.choice((
        f"Classify the sentiment of the following review as positive or negative.\n\nReview: {review}",
        f'Is the sentiment of this review positive or negative?\n\n"{review}"',
        f"Read the review and answer with one word, positive or negative.\n{review}\nSentiment:",
    ))
    answer = rng.choice((
        f"{label.capitalize()}.",
        f'The sentiment is {label}. The reviewer uses words such as "{adj1}" and "{adj2}", which express a '
        f"{label} opinion.",
    ))
    return task, answer


def _nlp_topic(rng: random.Random) -> tuple[str, str]:
    sentence, topic = _topic_sentence(rng)
    options = list(_TOPIC_TEMPLATES)
    rng.shuffle(options)
    task = rng.choice((
        f"Which topic does this sentence belong to? Options: {', '.join(options)}.\n\nSentence: {sentence}",
        f"Classify the news headline into one of the categories ({', '.join(options)}).\n{sentence}",
    ))
    answer = rng.choice((topic, f"The sentence is about {topic}, so the answer is: {topic}"))
    return task, answer


def _nlp_extract(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(3)
    if kind == 0:
        people = rng.sample(_NAMES, rng.randint(2, 3))
        group = " and ".join(people) if len(people) == 2 else f"{people[0]}, {people[1]} and {people[2]}"
        sentence = rng.choice((
            f"On {rng.choice(_WEEKDAYS)}, {group} met at the {rng.choice(_PLACES)} in {rng.choice(_CITIES)}.",
            f"The prize was shared by {group} after a long contest in {rng.choice(_CITIES)}.",
        ))
        task = f"Extract all the person names mentioned in the following sentence, separated by commas.\n\n{sentence}"
        return task, ", ".join(people)
    if kind == 1:
        numbers = [rng.randint(2, 950) for _ in range(3)]
        sentence = rng.choice((
            "The store sold {} chairs, {} tables and {} lamps last month.",
            "Flight {} left from gate {} with {} passengers on board.",
            "The survey asked {} students, {} teachers and {} parents about the new schedule.",
        )).format(*numbers)
        task = f"List every number that appears in the text below, in order.\n\nText: {sentence}"
        return task, ", ".join(str(x) for x in numbers)
    dates = []
    for _ in range(2):
        month = rng.choice(_MONTHS)
        dates.append(f"{month} {rng.randint(1, 28)}, {rng.randint(1990, 2030)}")
    sentence = rng.choice((
        "The meeting was moved from {} to {}.",
        "The museum closed on {} and reopened on {}.",
        "Her contract started on {} and ends on {}.",
    )).format(*dates)
    task = f"Extract the dates from this sentence.\n\n{sentence}"
    return task, "; ".join(dates)


def _nlp_rewrite(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(4)
    if kind == 0:
        sentence, _ = _topic_sentence(rng)
        return f"Rewrite the following sentence in uppercase letters:\n{sentence}", sentence.upper()
    if kind == 1:
        sentence = _topic_sentence(rng)[0].rstrip(".")
        return (f"Reverse the order of the words in this sentence: {sentence}",
                " ".join(reversed(sentence.split())))
    if kind == 2:
        (past, participle), objects = rng.choice(list(_PASSIVE_VERBS.items()))
        name, obj = rng.choice(_NAMES), rng.choice(objects)
        when = rng.choice(("", " yesterday", " last week", " on Monday"))
        return (f"Rewrite the sentence in the passive voice: {name} {past} the {obj}{when}.",
                f"The {obj} was {participle} by {name}{when}.")
    adj = rng.sample(_ADJECTIVES, 3)
    agent, target, action, spot = (rng.choice(x) for x in (_AGENTS, _TARGETS, _ACTIONS, _SPOTS))
    sentence = f"The {adj[0]} {agent} {action} the {adj[1]} {target} near the {adj[2]} {spot}."
    return (f"Shorten this sentence by removing every adjective: {sentence}",
            f"The {agent} {action} the {target} near the {spot}.")


def nlp_conversation(rng: random.Random) -> Turns:
    """One NLP task (classification, extraction or rewriting) with its correct answer.

    Args:
        rng: The source of every random choice.

    Returns:
        The turns, in ShareGPT form; most start with an OpenOrca-style system prompt.
    """
    task, answer = rng.choice((_nlp_sentiment, _nlp_topic, _nlp_extract, _nlp_extract, _nlp_rewrite, _nlp_rewrite))(rng)
    system = rng.choice(_NLP_SYSTEMS) if rng.random() < 0.7 else None
    return _conversation([(task, answer)], system)


# ---------------------------------------------------------------------------------------------------------
# math: MetaMathQA-like word problems; every step is an equation "a op b = c" that the code computed


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
    name, item, box = rng.choice(_NAMES), rng.choice(_ITEMS), rng.choice(_CONTAINERS)
    a, b, c = rng.randint(2, 30), rng.randint(2, 9), rng.randint(2, 12)
    question = rng.choice((
        f"{name} has {a} {item}. {name} buys {b} {box} with {c} {item} in each. How many {item} does {name} have now?",
        f"{name} starts with {a} {item} and then gets {b} {box} of {item}. Each one holds {c} {item}. What is the "
        f"total number of {item} {name} has?",
    ))
    return MathProblem(question, (f"The {box} hold {b} × {c} = {b * c} {item}.",
                                  f"In total {name} has {a} + {b * c} = {a + b * c} {item}."), a + b * c)


def _m_give_away(rng: random.Random) -> MathProblem:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    each, friends = rng.randint(2, 8), rng.randint(2, 6)
    start = each * friends + rng.randint(1, 40)
    question = (f"{name} had {start} {item} and gave {each} {item} to each of {friends} friends. How many {item} are "
                "left?")
    given = each * friends
    return MathProblem(question, (f"{name} gives away {each} × {friends} = {given} {item}.",
                                  f"{name} has {start} − {given} = {start - given} {item} left."), start - given)


def _m_wages(rng: random.Random) -> MathProblem:
    name = rng.choice(_NAMES)
    rate, hours, days = rng.randint(8, 30), rng.randint(2, 9), rng.randint(2, 7)
    question = rng.choice((
        f"{name} earns {rate} dollars per hour and works {hours} hours a day for {days} days. How much does {name} "
        "earn?",
        f"If {name} works {hours} hours each day for {days} days at {rate} dollars an hour, how many dollars does "
        f"{name} make in total?",
    ))
    daily = rate * hours
    steps = (f"Each day {name} earns {rate} × {hours} = {daily} dollars.",
             f"Over {days} days that is {daily} × {days} = {daily * days} dollars.")
    return MathProblem(question, steps, daily * days)


def _m_share(rng: random.Random) -> MathProblem:
    item = rng.choice(_ITEMS)
    kids, each = rng.randint(2, 12), rng.randint(3, 15)
    eaten = rng.randint(1, each - 1)
    total = kids * each
    question = (f"{total} {item} are shared equally among {kids} children. Each child then gives {eaten} away. How "
                f"many {item} does each child have left?")
    return MathProblem(question, (f"Each child first gets {total} ÷ {kids} = {each} {item}.",
                                  f"After giving some away, each has {each} − {eaten} = {each - eaten} {item}."),
                       each - eaten)


def _m_distance(rng: random.Random) -> MathProblem:
    vehicle = rng.choice(("train", "bus", "car", "ferry"))
    speed, hours, extra = rng.randrange(30, 95, 5), rng.randint(2, 6), rng.randint(5, 60)
    question = (f"A {vehicle} travels at {speed} kilometers per hour for {hours} hours, then another {extra} "
                f"kilometers. How far does it travel altogether?")
    first = speed * hours
    return MathProblem(question, (f"In the first part it covers {speed} × {hours} = {first} kilometers.",
                                  f"Altogether it travels {first} + {extra} = {first + extra} kilometers."),
                       first + extra)


def _m_age(rng: random.Random) -> MathProblem:
    younger, older = rng.sample(_NAMES, 2)
    age, more = rng.randint(5, 20), rng.randint(1, 10)
    question = (f"{younger} is {age} years old. {older} is {more} years older than twice {younger}'s age. How old is "
                f"{older}?")
    return MathProblem(question, (f"Twice {younger}'s age is 2 × {age} = {2 * age}.",
                                  f"So {older} is {2 * age} + {more} = {2 * age + more} years old."), 2 * age + more)


def _m_rectangle(rng: random.Random) -> MathProblem:
    length = rng.randint(3, 40)
    width = rng.randint(2, length)
    place = rng.choice(("garden", "playground", "room", "field"))
    if rng.random() < 0.5:
        question = f"A {place} is {length} meters long and {width} meters wide. What is its perimeter in meters?"
        half = length + width
        return MathProblem(question, (f"Length plus width is {length} + {width} = {half} meters.",
                                      f"The perimeter is 2 × {half} = {2 * half} meters."), 2 * half)
    tiles = rng.randint(2, 5)
    question = (f"A {place} is {length} meters long and {width} meters wide. Each square meter needs {tiles} tiles. "
                f"How many tiles are needed?")
    area = length * width
    return MathProblem(question, (f"The area is {length} × {width} = {area} square meters.",
                                  f"The tiles needed are {area} × {tiles} = {area * tiles}."), area * tiles)


def _m_discount(rng: random.Random) -> MathProblem:
    thing = rng.choice(("jacket", "bicycle", "lamp", "pair of boots", "guitar"))
    price, percent = rng.randrange(20, 420, 20), rng.choice((10, 20, 25, 50))
    off = price * percent // 100  # exact: price is a multiple of 20 and percent divides into it
    question = f"A {thing} costs {price} dollars and is on sale for {percent}% off. What is the sale price in dollars?"
    return MathProblem(question, (f"The discount is {price} × {percent} ÷ 100 = {off} dollars.",
                                  f"The sale price is {price} − {off} = {price - off} dollars."), price - off)


def _m_reading(rng: random.Random) -> MathProblem:
    name = rng.choice(_NAMES)
    per_day, days = rng.randint(5, 40), rng.randint(2, 10)
    read = per_day * days
    pages = read + rng.randint(10, 200)
    question = (f"{name} reads {per_day} pages a day. The book has {pages} pages. How many pages are left after "
                f"{days} days?")
    return MathProblem(question, (f"In {days} days {name} reads {per_day} × {days} = {read} pages.",
                                  f"The pages left are {pages} − {read} = {pages - read}."), pages - read)


def _m_average(rng: random.Random) -> MathProblem:
    name = rng.choice(_NAMES)
    scores = [rng.randint(50, 99) for _ in range(3)]
    scores[2] += -sum(scores) % 3  # a whole-number mean keeps every step an integer equation
    total = sum(scores)
    question = f"{name} scored {scores[0]}, {scores[1]} and {scores[2]} on three tests. What is the average score?"
    return MathProblem(question, (f"The total is {scores[0]} + {scores[1]} + {scores[2]} = {total}.",
                                  f"The average is {total} ÷ 3 = {total // 3}."), total // 3)


def _m_unknown(rng: random.Random) -> MathProblem:
    x, factor, added = rng.randint(2, 20), rng.randint(2, 9), rng.randint(1, 30)
    result = factor * x + added
    question = (f"When a number is multiplied by {factor} and then {added} is added, the result is {result}. What is "
                f"the number?")
    return MathProblem(question, (f"First undo the addition: {result} − {added} = {result - added}.",
                                  f"Then undo the multiplication: {result - added} ÷ {factor} = {x}."), x)


def _m_savings(rng: random.Random) -> MathProblem:
    name = rng.choice(_NAMES)
    weekly, weeks, saved = rng.randint(5, 25), rng.randint(2, 12), rng.randint(5, 60)
    cost = saved + weekly * weeks
    thing = rng.choice(("bike", "tablet", "skateboard", "telescope"))
    question = (f"{name} wants a {thing} that costs {cost} dollars and already has {saved} dollars. If {name} saves "
                f"{weekly} dollars each week, how many weeks will it take to afford the {thing}?")
    return MathProblem(question, (f"{name} still needs {cost} − {saved} = {cost - saved} dollars.",
                                  f"That takes {cost - saved} ÷ {weekly} = {weeks} weeks."), weeks)


_MATH_KINDS = (_m_containers, _m_give_away, _m_wages, _m_share, _m_distance, _m_age, _m_rectangle, _m_discount,
               _m_reading, _m_average, _m_unknown, _m_savings)


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
    return _conversation([(problem.question, solution)], system)


# ---------------------------------------------------------------------------------------------------------
# code: evol-codealpaca-like Python tasks; the expected outputs come from a reference computation


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


@dataclass(frozen=True)
class _Spec:
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


def _c_sum(rng: random.Random) -> _Spec:
    arg = rng.choice(("numbers", "values", "nums"))
    if rng.random() < 0.5:
        body = _body("total = 0", f"for x in {arg}:", "    total += x", "return total")
        how = "adds each number to a running total"
    else:
        body, how = _body(f"return sum({arg})"), "uses the built-in sum function"
    return _Spec(
        name=rng.choice(("sum_list", "list_total", "add_all")), params=arg,
        does="returns the sum of all the numbers in a list", body=body,
        cases=tuple(((xs,), sum(xs)) for xs in (_ints(rng), _ints(rng), [])),
        explanation=f"The function {how}; an empty list gives 0.",
    )


def _c_reverse(rng: random.Random) -> _Spec:
    arg = rng.choice(("s", "text", "word"))
    if rng.random() < 0.5:
        body, how = _body(f"return {arg}[::-1]"), "uses slicing with a step of -1"
    else:
        body, how = _body(f'return "".join(reversed({arg}))'), "joins the characters produced by reversed()"
    texts = (rng.choice(_WORDS), " ".join(rng.sample(_WORDS, 2)), "")
    return _Spec(
        name=rng.choice(("reverse_string", "reverse_text", "backwards")), params=arg,
        does="returns the given string reversed", body=body, cases=tuple(((t,), t[::-1]) for t in texts),
        explanation=f"It {how} to build the reversed string.",
    )


def _c_vowels(rng: random.Random) -> _Spec:
    arg = rng.choice(("text", "s", "sentence"))
    if rng.random() < 0.5:
        body = _body(f'return sum(1 for ch in {arg}.lower() if ch in "aeiou")')
    else:
        body = _body("count = 0", f"for ch in {arg}.lower():", '    if ch in "aeiou":', "        count += 1",
                     "return count")
    texts = (" ".join(rng.sample(_WORDS, 2)).capitalize(), rng.choice(_WORDS).upper(), "rhythm")
    return _Spec(
        name=rng.choice(("count_vowels", "vowel_count")), params=arg,
        does="counts the vowels (a, e, i, o, u) in a string, ignoring case", body=body,
        cases=tuple(((t,), sum(1 for ch in t.lower() if ch in "aeiou")) for t in texts),
        explanation='It lowercases the string and counts the characters found in "aeiou".',
    )


def _c_fizzbuzz(rng: random.Random) -> _Spec:
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
        return [w1 + w2 if i % a == 0 and i % b == 0 else w1 if i % a == 0 else w2 if i % b == 0 else str(i)
                for i in range(1, n + 1)]

    return _Spec(
        name=rng.choice(("fizzbuzz", f"{w1.lower()}_{w2.lower()}")), params="n",
        does=f'returns a list of strings for the numbers 1 to n, using "{w1}" for multiples of {a}, "{w2}" for '
             f'multiples of {b}, "{w1}{w2}" for multiples of both, and the number itself otherwise',
        body=body,
        cases=tuple(((n,), reference(n)) for n in (b + 1, a * b + rng.randint(0, 3), 0)),
        explanation="It checks the combined case first, so multiples of both numbers get both words.",
        complexity="O(n) time, because it builds one string per number",
    )


def _c_maximum(rng: random.Random) -> _Spec:
    arg = rng.choice(("numbers", "values", "items"))
    return _Spec(
        name=rng.choice(("find_max", "largest", "max_value")), params=arg,
        does="returns the largest number in a non-empty list without using max()",
        body=_body(f"best = {arg}[0]", f"for x in {arg}[1:]:", "    if x > best:", "        best = x", "return best"),
        cases=tuple(((xs,), max(xs)) for xs in (_ints(rng), _ints(rng, -90, -1), [rng.randint(0, 9)])),
        explanation="It keeps the best value seen so far and updates it when a larger one appears.",
    )


def _c_palindrome(rng: random.Random) -> _Spec:
    arg = rng.choice(("text", "s", "phrase"))
    texts = (rng.choice(("Racecar", "Never odd or even", "Step on no pets", "Was it a car or a cat I saw?")),
             rng.choice(_WORDS).capitalize(), rng.choice(("A man, a plan, a canal: Panama", "No lemon, no melon")))

    def reference(text: str) -> bool:
        kept = "".join(ch for ch in text.lower() if ch.isalnum())
        return kept == kept[::-1]

    return _Spec(
        name=rng.choice(("is_palindrome", "check_palindrome")), params=arg,
        does="checks whether a string reads the same backwards, ignoring case, spaces and punctuation",
        body=_body(f"cleaned = [ch.lower() for ch in {arg} if ch.isalnum()]", "return cleaned == cleaned[::-1]"),
        cases=tuple(((t,), reference(t)) for t in texts),
        explanation="It keeps only letters and digits, lowercases them, and compares the list with its reverse.",
    )


def _c_factorial(rng: random.Random) -> _Spec:
    if rng.random() < 0.5:
        body = _body("result = 1", "for i in range(2, n + 1):", "    result *= i", "return result")
        explanation = "It multiplies the numbers from 2 to n; 0! and 1! are 1."
    else:
        body = _body("if n <= 1:", "    return 1", "return n * factorial(n - 1)")
        explanation = "It calls itself on n - 1 until it reaches the base case n <= 1, which returns 1."
    return _Spec(
        name="factorial", params="n", does="returns the factorial of a non-negative integer n", body=body,
        cases=tuple(((n,), math.factorial(n)) for n in (rng.randint(2, 12), 0, 1)), explanation=explanation,
        complexity="O(n) time, because it performs one multiplication per number up to n",
    )


def _c_fibonacci(rng: random.Random) -> _Spec:
    fib = [0, 1]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])
    return _Spec(
        name=rng.choice(("fibonacci", "nth_fibonacci", "fib")), params="n",
        does="returns the n-th Fibonacci number, with fib(0) = 0 and fib(1) = 1",
        body=_body("a, b = 0, 1", "for _ in range(n):", "    a, b = b, a + b", "return a"),
        cases=tuple(((n,), fib[n]) for n in (rng.randint(5, 39), 0, 1)),
        explanation="It walks forward n times, keeping only the last two numbers of the sequence.",
        complexity="O(n) time and O(1) extra space",
    )


def _c_frequency(rng: random.Random) -> _Spec:
    arg = rng.choice(("text", "sentence"))
    cases: list[tuple[tuple[Any, ...], Any]] = [(("",), {})]
    for _ in range(2):
        words = [rng.choice(_WORDS[:5]) for _ in range(rng.randint(3, 6))]
        text = " ".join(w.capitalize() if rng.random() < 0.3 else w for w in words)
        cases.insert(0, ((text,), dict(collections.Counter(words))))
    return _Spec(
        name=rng.choice(("word_frequency", "count_words")), params=arg,
        does="returns a dictionary mapping each lowercase word of a string to the number of times it appears",
        body=_body("counts = {}", f"for word in {arg}.lower().split():", "    counts[word] = counts.get(word, 0) + 1",
                   "return counts"),
        cases=tuple(cases),
        explanation="It splits the text on whitespace and counts each lowercased word with dict.get.",
        complexity="O(n) time in the length of the text",
    )


def _c_multiples(rng: random.Random) -> _Spec:
    arg = rng.choice(("numbers", "nums"))
    cases = []
    for _ in range(3):
        xs, k = _ints(rng, 0, 40), rng.randint(2, 7)
        cases.append(((xs, k), [x for x in xs if x % k == 0]))
    return _Spec(
        name=rng.choice(("filter_multiples", "multiples_of", "keep_divisible")), params=f"{arg}, k",
        does="returns the numbers from a list that are divisible by k, in their original order",
        body=_body(f"return [x for x in {arg} if x % k == 0]"), cases=tuple(cases),
        explanation="The list comprehension keeps x only when x % k is zero.",
    )


def _c_celsius(rng: random.Random) -> _Spec:
    return _Spec(
        name=rng.choice(("celsius_to_fahrenheit", "c_to_f", "to_fahrenheit")), params="celsius",
        does="converts a temperature from Celsius to Fahrenheit", body=_body("return celsius * 9 / 5 + 32"),
        cases=tuple(((c,), c * 9 / 5 + 32) for c in (100, -40, 5 * rng.randint(-8, 20))),
        explanation="It applies the formula F = C * 9 / 5 + 32.", complexity="O(1) time, since it is a single formula",
    )


def _c_prime(rng: random.Random) -> _Spec:
    def reference(n: int) -> bool:
        return n >= 2 and all(n % d for d in range(2, n))

    return _Spec(
        name=rng.choice(("is_prime", "check_prime")), params="n",
        does="returns True if n is a prime number and False otherwise",
        body=_body("if n < 2:", "    return False", "i = 2", "while i * i <= n:", "    if n % i == 0:",
                   "        return False", "    i += 1", "return True"),
        cases=tuple(((n,), reference(n)) for n in (rng.choice((7, 13, 29, 97, 101)), rng.randint(4, 200), 1)),
        explanation="It tries divisors up to the square root of n: a larger factor would pair with a smaller one.",
        complexity="O(sqrt(n)) time",
    )


def _c_dedupe(rng: random.Random) -> _Spec:
    arg = rng.choice(("items", "values"))
    lists = (_ints(rng, 0, 6), [rng.choice(_WORDS[:4]) for _ in range(5)], [])
    return _Spec(
        name=rng.choice(("remove_duplicates", "unique_in_order", "dedupe")), params=arg,
        does="removes duplicates from a list while keeping the first occurrence of each item in order",
        body=_body("seen = set()", "result = []", f"for x in {arg}:", "    if x not in seen:", "        seen.add(x)",
                   "        result.append(x)", "return result"),
        cases=tuple(((xs,), list(dict.fromkeys(xs))) for xs in lists),
        explanation="A set remembers what was already seen, and the result list keeps the original order.",
    )


def _c_gcd(rng: random.Random) -> _Spec:
    cases = []
    for _ in range(3):
        g = rng.randint(1, 12)
        x, y = g * rng.randint(1, 20), g * rng.randint(1, 20)
        cases.append(((x, y), math.gcd(x, y)))
    return _Spec(
        name=rng.choice(("gcd", "greatest_common_divisor")), params="a, b",
        does="returns the greatest common divisor of two positive integers using Euclid's algorithm",
        body=_body("while b:", "    a, b = b, a % b", "return a"), cases=tuple(cases),
        explanation="Each step replaces (a, b) with (b, a % b); when b reaches zero, a holds the answer.",
        complexity="O(log(min(a, b))) time",
    )


def _c_title_case(rng: random.Random) -> _Spec:
    arg = rng.choice(("text", "sentence"))
    texts = (" ".join(rng.sample(_WORDS, 3)), " ".join(rng.sample(_WORDS, 2)).upper(), "")
    return _Spec(
        name=rng.choice(("capitalize_words", "title_case")), params=arg,
        does="capitalizes the first letter of every word, making the other letters lowercase",
        body=_body(f'return " ".join(word.capitalize() for word in {arg}.split())'),
        cases=tuple(((t,), " ".join(w.capitalize() for w in t.split())) for t in texts),
        explanation="It splits the string into words, capitalizes each one, and joins them with single spaces.",
    )


def _c_running_total(rng: random.Random) -> _Spec:
    arg = rng.choice(("numbers", "values"))
    lists = (_ints(rng, 0, 20), _ints(rng, -10, 10), [])
    return _Spec(
        name=rng.choice(("running_total", "cumulative_sum", "prefix_sums")), params=arg,
        does="returns a list where each element is the sum of all numbers up to that position",
        body=_body("totals = []", "total = 0", f"for x in {arg}:", "    total += x", "    totals.append(total)",
                   "return totals"),
        cases=tuple(((xs,), [sum(xs[: i + 1]) for i in range(len(xs))]) for xs in lists),
        explanation="It keeps a running total and appends it after adding each number.",
    )


def _c_count_char(rng: random.Random) -> _Spec:
    if rng.random() < 0.5:
        body = _body("return text.count(char)")
    else:
        body = _body("count = 0", "for c in text:", "    if c == char:", "        count += 1", "return count")
    cases = []
    for _ in range(3):
        text, char = " ".join(rng.sample(_WORDS, 2)), rng.choice("aeinorst")
        cases.append(((text, char), sum(1 for c in text if c == char)))
    return _Spec(
        name=rng.choice(("count_char", "count_occurrences")), params="text, char",
        does="counts how many times a given character appears in a string", body=body, cases=tuple(cases),
        explanation="It compares every character of the text with the one we are looking for.",
    )


def _c_average(rng: random.Random) -> _Spec:
    arg = rng.choice(("numbers", "scores", "values"))
    cases: list[tuple[tuple[Any, ...], Any]] = []
    for _ in range(2):
        xs = _ints(rng, 0, 100)
        xs[-1] += -sum(xs) % len(xs)  # a whole-number mean prints cleanly in the examples
        cases.append(((xs,), sum(xs) / len(xs)))
    cases.append((([],), 0.0))
    return _Spec(
        name=rng.choice(("average", "mean", "list_average")), params=arg,
        does="returns the average of a list of numbers, or 0.0 for an empty list",
        body=_body(f"if not {arg}:", "    return 0.0", f"return sum({arg}) / len({arg})"), cases=tuple(cases),
        explanation="It divides the sum by the count, after handling the empty list so that it never divides by zero.",
    )


def _c_anagram(rng: random.Random) -> _Spec:
    pairs = (rng.choice((("listen", "silent"), ("Dormitory", "dirty room"), ("The eyes", "they see"))),
             (rng.choice(_WORDS), rng.choice(_WORDS)[::-1].capitalize()), ("apple", "paper"))

    def reference(x: str, y: str) -> bool:
        return collections.Counter(x.replace(" ", "").lower()) == collections.Counter(y.replace(" ", "").lower())

    return _Spec(
        name=rng.choice(("is_anagram", "are_anagrams")), params="a, b",
        does="checks whether two strings are anagrams of each other, ignoring spaces and case",
        body=_body('clean_a = sorted(a.replace(" ", "").lower())', 'clean_b = sorted(b.replace(" ", "").lower())',
                   "return clean_a == clean_b"),
        cases=tuple(((x, y), reference(x, y)) for x, y in pairs),
        explanation="Two strings are anagrams when their sorted letters are equal.",
        complexity="O(n log n) time, because of the sorting",
    )


_CODE_KINDS = (_c_sum, _c_reverse, _c_vowels, _c_fizzbuzz, _c_maximum, _c_palindrome, _c_factorial, _c_fibonacci,
               _c_frequency, _c_multiples, _c_celsius, _c_prime, _c_dedupe, _c_gcd, _c_title_case, _c_running_total,
               _c_count_char, _c_average, _c_anagram)


def _call(name: str, args: tuple[Any, ...]) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


def code_task(rng: random.Random) -> CodeTask:
    """Draw one small Python task with its solution and test cases.

    Args:
        rng: The source of every random choice.

    Returns:
        The task; ``exec(task.code)`` defines ``task.func_name``, which passes every case in ``task.cases``.
    """
    spec = rng.choice(_CODE_KINDS)(rng)
    signature = f"{spec.name}({spec.params})"
    prompt = rng.choice((
        f"Write a Python function `{signature}` that {spec.does}.",
        f"Implement `{signature}` in Python. The function {spec.does}.",
        f"I need a Python function called `{spec.name}` that {spec.does}. Could you write it for me?",
        f"Create a function `{signature}` in Python which {spec.does}.",
        f"Develop a Python function named `{spec.name}` that {spec.does}.",
    ))
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
    intro = rng.choice(("Here is a Python function that does this:", "Sure! Here's a simple implementation:",
                        "You can solve this with a short function:"))
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
        exchanges.append(("How can I test it?", f"You can check it with a few assertions:\n\n```python\n{asserts}\n"
                                                "```\n\nIf all of them pass, the function behaves as expected."))
    system = "You are an expert Python programmer." if rng.random() < 0.2 else None
    return _conversation(exchanges, system)


_GENERATORS: dict[str, Callable[[random.Random], Turns]] = {
    "dialogue": dialogue_conversation,
    "nlp": nlp_conversation,
    "math": math_conversation,
    "code": code_conversation,
}
