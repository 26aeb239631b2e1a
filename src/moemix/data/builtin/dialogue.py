"""dialogue: everyday ShareGPT-like chat (greetings, recommendations, planning, advice), 1-3 exchanges."""

from __future__ import annotations

import random

from moemix.data.builtin.shared import CITIES, NAMES, Turns, conversation


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


_PARTS_OF_DAY = ("morning", "afternoon", "evening")
_SPANS = ("weekend", "holidays", "evening", "week ahead")
_ACTIVITIES = (
    "a long walk",
    "the gym",
    "a yoga class",
    "the farmers market",
    "a picnic in the park",
    "a bike ride",
    "my cousin's wedding",
    "a concert",
    "a swim at the lake",
)
_PLANS = {  # plan: (a comment on it, a tip for it)
    "visiting my grandparents": (
        "Spending time with family is always special.",
        "bring a small gift or some homemade snacks",
    ),
    "trying a new hiking trail": (
        "Fresh air and a bit of exercise can really lift your mood.",
        "wear comfortable shoes and bring water",
    ),
    "learning to bake bread": (
        "There's nothing like the smell of fresh bread at home.",
        "be patient and let the dough rise fully",
    ),
    "having a movie night with friends": (
        "That's such a cozy way to relax together.",
        "pick a film everyone agrees on ahead of time",
    ),
    "cleaning out my closet": (
        "Clearing out clutter can feel surprisingly refreshing.",
        "donate the clothes you no longer wear",
    ),
    "going to the beach": ("A day by the sea sounds so relaxing.", "pack sunscreen and a hat"),
    "painting my bedroom": (
        "A fresh color can make a room feel brand new.",
        "keep the windows open while the paint dries",
    ),
    "visiting an art museum": (
        "Museums are a lovely place to slow down and get inspired.",
        "check the opening hours before you go",
    ),
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
        "Go to bed and wake up at the same time every day.",
        "Keep your bedroom cool, dark and quiet.",
        "Put your phone away an hour before bed.",
        "Avoid coffee in the late afternoon.",
        "Try a short breathing exercise when you lie down.",
    ),
    "manage stress at work": (
        "Take short breaks and step away from your desk.",
        "Write down your tasks and tackle one at a time.",
        "Talk to a friend or colleague you trust.",
        "Go for a walk during lunch.",
        "Say no to extra work when your plate is already full.",
    ),
    "start running": (
        "Begin with short runs mixed with walking.",
        "Get a pair of comfortable running shoes.",
        "Run at an easy pace where you could still chat.",
        "Rest between runs so your body can recover.",
        "Find a friend or a club to keep you motivated.",
    ),
    "cook more at home": (
        "Plan a few simple meals for the week.",
        "Keep basics like rice, pasta and eggs in the kitchen.",
        "Cook a double portion and save leftovers for lunch.",
        "Learn one new recipe each week.",
        "Make cooking fun by playing music or inviting a friend.",
    ),
    "keep houseplants alive": (
        "Check the soil with your finger before watering.",
        "Put each plant where it gets the right amount of light.",
        "Use pots with drainage holes.",
        "Remove yellow leaves so the plant stays healthy.",
        "Water less often in winter.",
    ),
    "learn a new language": (
        "Practice a little every day instead of a lot once a week.",
        "Listen to songs and podcasts in the language.",
        "Find a conversation partner online.",
        "Label things around your home with their names.",
        "Don't be afraid of making mistakes.",
    ),
}


def _dialogue_small_talk(rng: random.Random) -> list[tuple[str, str]]:
    name, part, span = rng.choice(NAMES), rng.choice(_PARTS_OF_DAY), rng.choice(_SPANS)
    activity = rng.choice(_ACTIVITIES)
    opener = rng.choice(
        (
            "Hi! How are you doing today?",
            f"Hey there, how is your {part} going?",
            f"Good {part}! I just got back from {activity} and felt like chatting.",
            f"Hello! My name is {name}. Nice to meet you!",
            f"Hi, I'm feeling a little bored this {part}. Want to chat for a while?",
        )
    )
    to_name = f", {name}" if name in opener else ""
    if activity in opener:
        reply = f"Welcome back! How was {activity}? I hope you had a lovely time. What's next on your list?"
    else:
        reply = rng.choice(
            (
                f"Hi{to_name}! I'm doing well, thanks for asking. How about you? Anything fun planned for the {span}?",
                f"Hello{to_name}! It's nice to hear from you. I'd love to chat. What's on your mind this {part}?",
                f"Hey{to_name}! Thanks for stopping by. I hope your {part} has been relaxing. "
                "What have you been up to?",
            )
        )
    exchanges = [(opener, reply)]
    if rng.random() < 0.7:
        plan = rng.choice(list(_PLANS))
        comment, tip = _PLANS[plan]
        if activity in opener:
            follow_up = f"It was great, thanks! Next I'm thinking about {plan} this {span}. What do you think?"
        else:
            follow_up = rng.choice(
                (
                    f"I'm good, thanks. I'm thinking about {plan} this {span}. What do you think?",
                    f"Not much yet, but I might end up {plan}. Does that sound like a good idea?",
                )
            )
        exchanges.append(
            (
                follow_up,
                f"That sounds like a wonderful idea! {comment} Just remember to {tip}. I hope you have a great time.",
            )
        )
        if rng.random() < 0.5:
            exchanges.append(
                (
                    rng.choice(("Thanks, that's kind of you. Talk to you later!", "Great tip, thanks! Bye for now.")),
                    f"You're welcome! Enjoy your {span} and feel free to come back anytime.",
                )
            )
    return exchanges


def _title(rng: random.Random) -> str:
    return f"The {rng.choice(_TITLE_WORDS[0])} {rng.choice(_TITLE_WORDS[1])}"


def _dialogue_recommendation(rng: random.Random) -> list[tuple[str, str]]:
    category, genre, occasion = rng.choice(list(_CATEGORIES)), rng.choice(list(_GENRES)), rng.choice(_OCCASIONS)
    city = rng.choice(CITIES)
    first, second = (t.format(city=city) for t in rng.sample(_GENRES[genre], 2))
    title, other = _title(rng), _title(rng)
    while other == title:
        other = _title(rng)
    ask = rng.choice(
        (
            f"Can you recommend a good {genre} {category} for {occasion}?",
            f"I'm looking for a {category} to enjoy during {occasion}. I really like {genre}. Any suggestions?",
            f"What {genre} {category} would you suggest for {occasion}?",
        )
    )
    why = rng.choice(
        (
            "Many people love it because the characters feel so real.",
            f"It's easy to get lost in, which makes it perfect for {occasion.replace('my ', 'your ')}.",
            "The ending is truly memorable.",
        )
    )
    quality = rng.choice(_QUALITIES)
    answer = f'Sure! You might enjoy "{title}". It\'s a {quality} {genre} {category} about {first}. {why}'
    exchanges = [(ask, answer)]
    if rng.random() < 0.7:
        exchanges.append(
            rng.choice(
                (
                    (
                        "Have you got something a little lighter?",
                        f'Of course! Try "{other}". It\'s more playful, a gentle story about {second}, '
                        "and it never feels heavy.",
                    ),
                    (
                        f"I've already {_CATEGORIES[category]} that one. Anything else?",
                        f'No problem! How about "{other}"? It\'s a {rng.choice(_QUALITIES)} {category} about {second}.',
                    ),
                )
            )
        )
        if rng.random() < 0.5:
            exchanges.append(
                (
                    "Thanks! I'll give it a try.",
                    "Great choice! I hope you enjoy it. Let me know what you think afterwards.",
                )
            )
    return exchanges


def _dialogue_planning(rng: random.Random) -> list[tuple[str, str]]:
    name, city = rng.choice(NAMES), rng.choice(CITIES)
    kind = rng.randrange(3)
    if kind == 0:
        days = rng.randint(2, 4)
        company = rng.choice(("my partner", "two friends", "my parents", "my kids", "a coworker"))
        plan = "\n".join(f"- Day {i + 1}: {act}" for i, act in enumerate(rng.sample(_TRIP_DAYS, days)))
        exchanges = [
            (
                f"I'm planning a {days}-day trip to {city} with {company}. Can you help me make a plan?",
                f"I'd be happy to help! Here's a simple plan:\n{plan}\nLeave some free time each day so the trip "
                "doesn't feel rushed.",
            )
        ]
        if rng.random() < 0.6:
            season, tip = rng.choice(
                (
                    ("summer", "bring light clothes and a refillable water bottle"),
                    ("winter", "pack a warm coat, gloves and a scarf"),
                    ("spring", "bring a light jacket and an umbrella for sudden showers"),
                    ("autumn", "pack layers, since mornings can be chilly"),
                )
            )
            exchanges.append(
                (
                    f"We're going in {season}. What should I pack?",
                    f"For {city} in {season}, {tip}. Comfortable walking shoes are a must, and don't forget chargers "
                    "and any travel documents.",
                )
            )
        return exchanges
    if kind == 1:
        weekday = rng.choice(("Friday", "Saturday", "Sunday"))
        chosen = sorted(rng.sample(range(len(_PARTY_STEPS)), 3))  # the steps keep their natural order
        steps = "\n".join(f"{i + 1}. {_PARTY_STEPS[j].format(name=name)}" for i, j in enumerate(chosen))
        return [
            (
                f"I want to throw a surprise party for my friend {name} next {weekday}. Where do I start?",
                f"What a lovely idea! Start with these steps:\n{steps}\nMost of all, relax and enjoy the moment with "
                f"{name}.",
            )
        ]
    subject = rng.choice(("history", "biology", "French", "chemistry", "economics", "music theory", "geography"))
    weeks = rng.randint(2, 6)
    ask = rng.choice(
        (
            f"I have my {subject} exam in {weeks} weeks and I feel lost. How should I plan my studying?",
            f"My {subject} final is {weeks} weeks away. Can you help me make a study plan?",
            f"How do I get ready for my {subject} exam? It's in {weeks} weeks.",
        )
    )
    habits = " ".join(rng.sample(_STUDY_HABITS, 2))
    return [
        (
            ask,
            f"Don't worry, {weeks} weeks is enough time if you plan well. Split the material into {weeks} parts and "
            f"cover one part each week. {habits} A good night's sleep before the exam matters more than a last-minute "
            "cram.",
        )
    ]


def _dialogue_advice(rng: random.Random) -> list[tuple[str, str]]:
    goal = rng.choice(list(_ADVICE))
    tips = rng.sample(_ADVICE[goal], 3)
    ask = rng.choice(
        (
            f"Do you have any advice on how to {goal}?",
            f"I've been struggling to {goal} lately. Any tips?",
            f"What are some easy ways to {goal}?",
        )
    )
    opener = rng.choice(
        (
            "Absolutely, here are a few ideas that help many people:",
            "That's a common challenge, and small changes can make a big difference:",
            "Sure! You could try these:",
        )
    )
    closer = rng.choice(
        (
            "Start with one change at a time and be kind to yourself.",
            "Give it a couple of weeks and notice how you feel.",
        )
    )
    numbered = "\n".join(f"{i + 1}. {tip}" for i, tip in enumerate(tips))
    exchanges = [(ask, f"{opener}\n{numbered}\n{closer}")]
    if rng.random() < 0.6:
        exchanges.append(
            rng.choice(
                (
                    (
                        "Which one should I try first?",
                        f"I'd start with the first one: {_lower_first(tips[0])} It's simple, "
                        "and it makes the others easier.",
                    ),
                    (
                        "Thanks, that's really helpful!",
                        f"You're very welcome! I'm sure you'll be able to {goal}. Good luck!",
                    ),
                )
            )
        )
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
    return conversation(exchanges, system)
