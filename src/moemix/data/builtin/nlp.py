"""nlp: OpenOrca-like tasks (classify, extract, rewrite) with checkable answers, usually under a system prompt."""

from __future__ import annotations

import random

from moemix.data.builtin.shared import CITIES, NAMES, Turns, conversation

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
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
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
        city=rng.choice(CITIES),
        name=rng.choice(NAMES),
        company=rng.choice(_COMPANIES),
        weekday=rng.choice(_WEEKDAYS),
    )
    return sentence, topic


def _nlp_sentiment(rng: random.Random) -> tuple[str, str]:
    label = rng.choice(("positive", "negative"))
    adj1, adj2 = rng.sample(_POSITIVE if label == "positive" else _NEGATIVE, 2)
    subject, aspect = rng.choice(_REVIEW_SUBJECTS), rng.choice(_REVIEW_ASPECTS)
    review = rng.choice(
        (
            f"The {subject} was {adj1}, and the {aspect} was {adj2}.",
            f"I found the {aspect} of this {subject} {adj1}; overall the experience felt {adj2}.",
            f"Honestly, the {subject} is {adj1} and its {aspect} is {adj2}.",
        )
    )
    task = rng.choice(
        (
            f"Classify the sentiment of the following review as positive or negative.\n\nReview: {review}",
            f'Is the sentiment of this review positive or negative?\n\n"{review}"',
            f"Read the review and answer with one word, positive or negative.\n{review}\nSentiment:",
        )
    )
    answer = rng.choice(
        (
            f"{label.capitalize()}.",
            f'The sentiment is {label}. The reviewer uses words such as "{adj1}" and "{adj2}", which express a '
            f"{label} opinion.",
        )
    )
    return task, answer


def _nlp_topic(rng: random.Random) -> tuple[str, str]:
    sentence, topic = _topic_sentence(rng)
    options = list(_TOPIC_TEMPLATES)
    rng.shuffle(options)
    task = rng.choice(
        (
            f"Which topic does this sentence belong to? Options: {', '.join(options)}.\n\nSentence: {sentence}",
            f"Classify the news headline into one of the categories ({', '.join(options)}).\n{sentence}",
        )
    )
    answer = rng.choice((topic, f"The sentence is about {topic}, so the answer is: {topic}"))
    return task, answer


def _nlp_extract(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(3)
    if kind == 0:
        people = rng.sample(NAMES, rng.randint(2, 3))
        group = " and ".join(people) if len(people) == 2 else f"{people[0]}, {people[1]} and {people[2]}"
        sentence = rng.choice(
            (
                f"On {rng.choice(_WEEKDAYS)}, {group} met at the {rng.choice(_PLACES)} in {rng.choice(CITIES)}.",
                f"The prize was shared by {group} after a long contest in {rng.choice(CITIES)}.",
            )
        )
        task = f"Extract all the person names mentioned in the following sentence, separated by commas.\n\n{sentence}"
        return task, ", ".join(people)
    if kind == 1:
        numbers = [rng.randint(2, 950) for _ in range(3)]
        sentence = rng.choice(
            (
                "The store sold {} chairs, {} tables and {} lamps last month.",
                "Flight {} left from gate {} with {} passengers on board.",
                "The survey asked {} students, {} teachers and {} parents about the new schedule.",
            )
        ).format(*numbers)
        task = f"List every number that appears in the text below, in order.\n\nText: {sentence}"
        return task, ", ".join(str(x) for x in numbers)
    dates = []
    for _ in range(2):
        month = rng.choice(_MONTHS)
        dates.append(f"{month} {rng.randint(1, 28)}, {rng.randint(1990, 2030)}")
    sentence = rng.choice(
        (
            "The meeting was moved from {} to {}.",
            "The museum closed on {} and reopened on {}.",
            "Her contract started on {} and ends on {}.",
        )
    ).format(*dates)
    task = f"Extract the dates from this sentence.\n\n{sentence}"
    return task, "; ".join(dates)


def _nlp_rewrite(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(4)
    if kind == 0:
        sentence, _ = _topic_sentence(rng)
        return f"Rewrite the following sentence in uppercase letters:\n{sentence}", sentence.upper()
    if kind == 1:
        sentence = _topic_sentence(rng)[0].rstrip(".")
        return (f"Reverse the order of the words in this sentence: {sentence}", " ".join(reversed(sentence.split())))
    if kind == 2:
        (past, participle), objects = rng.choice(list(_PASSIVE_VERBS.items()))
        name, obj = rng.choice(NAMES), rng.choice(objects)
        when = rng.choice(("", " yesterday", " last week", " on Monday"))
        return (
            f"Rewrite the sentence in the passive voice: {name} {past} the {obj}{when}.",
            f"The {obj} was {participle} by {name}{when}.",
        )
    adj = rng.sample(_ADJECTIVES, 3)
    agent, target, action, spot = (rng.choice(x) for x in (_AGENTS, _TARGETS, _ACTIONS, _SPOTS))
    sentence = f"The {adj[0]} {agent} {action} the {adj[1]} {target} near the {adj[2]} {spot}."
    return (
        f"Shorten this sentence by removing every adjective: {sentence}",
        f"The {agent} {action} the {target} near the {spot}.",
    )


def nlp_conversation(rng: random.Random) -> Turns:
    """One NLP task (classification, extraction or rewriting) with its correct answer.

    Args:
        rng: The source of every random choice.

    Returns:
        The turns, in ShareGPT form; most start with an OpenOrca-style system prompt.
    """
    task, answer = rng.choice((_nlp_sentiment, _nlp_topic, _nlp_extract, _nlp_extract, _nlp_rewrite, _nlp_rewrite))(rng)
    system = rng.choice(_NLP_SYSTEMS) if rng.random() < 0.7 else None
    return conversation([(task, answer)], system)
