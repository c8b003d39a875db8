"""English science and education pages: explainers and lesson notes on one concept each."""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, Block, SentencePool, dateline, paragraphs, person

CONCEPTS = (
    {
        "c": "photosynthesis",
        "field": "biology",
        "thing": "leaf",
        "actor": "plants",
        "unit": "the chloroplast",
        "fact": "plants turn light, water and carbon dioxide into sugar and oxygen",
        "title": "How photosynthesis really works",
    },
    {
        "c": "plate tectonics",
        "field": "geology",
        "thing": "fault line",
        "actor": "continents",
        "unit": "the lithospheric plate",
        "fact": "the outer shell of the Earth is broken into slowly moving plates",
        "title": "Plate tectonics explained for curious minds",
    },
    {
        "c": "the water cycle",
        "field": "earth science",
        "thing": "cloud",
        "actor": "water molecules",
        "unit": "the droplet",
        "fact": "water evaporates, condenses and falls again as rain or snow",
        "title": "Following a raindrop through the water cycle",
    },
    {
        "c": "natural selection",
        "field": "evolutionary biology",
        "thing": "population",
        "actor": "organisms",
        "unit": "the gene",
        "fact": "individuals better suited to their surroundings leave more offspring",
        "title": "Natural selection without the myths",
    },
    {
        "c": "electric circuits",
        "field": "physics",
        "thing": "battery",
        "actor": "electrons",
        "unit": "the resistor",
        "fact": "current flows only when there is a closed path from one terminal to the other",
        "title": "A beginner's guide to electric circuits",
    },
    {
        "c": "the phases of the Moon",
        "field": "astronomy",
        "thing": "crescent",
        "actor": "the Moon and the Earth",
        "unit": "the lunar orbit",
        "fact": "we see different portions of the sunlit half of the Moon as it orbits us",
        "title": "Why the Moon changes shape every night",
    },
    {
        "c": "chemical bonding",
        "field": "chemistry",
        "thing": "molecule",
        "actor": "atoms",
        "unit": "the electron pair",
        "fact": "atoms share or transfer electrons to reach a more stable arrangement",
        "title": "Chemical bonds: the glue that holds matter together",
    },
    {
        "c": "the immune response",
        "field": "medicine",
        "thing": "antibody",
        "actor": "white blood cells",
        "unit": "the lymph node",
        "fact": "the body recognises foreign invaders and remembers them for next time",
        "title": "How your immune system learns to fight infection",
    },
    {
        "c": "ocean currents",
        "field": "oceanography",
        "thing": "current",
        "actor": "seawater",
        "unit": "the gyre",
        "fact": "differences in temperature and salt content keep the oceans in constant motion",
        "title": "The hidden rivers of the ocean",
    },
    {
        "c": "probability",
        "field": "mathematics",
        "thing": "coin",
        "actor": "random events",
        "unit": "the sample space",
        "fact": "we can measure how likely an event is with a number between zero and one",
        "title": "Thinking clearly about probability",
    },
)

INTRO = (
    "Few ideas in {field} are as useful, or as often misunderstood, as {c}.",
    "If you have ever wondered why {fact}, you are already asking the right question about {c}.",
    "Most of us first meet {c} at school, usually in a hurried lesson just before an exam.",
    "At its heart, the idea behind {c} is simple: {fact}.",
    "This guide walks through {c} step by step, starting with what you can observe for yourself.",
    "Scientists have studied {c} for well over a century, yet new details are still being discovered.",
)

EXPLAIN = (
    "The key point to remember is that {fact}.",
    "It helps to picture {unit} as a small workshop where the important changes take place.",
    "When conditions change, {actor} respond in ways that can be measured and predicted.",
    "Early researchers could only guess at the mechanism, because their instruments were too crude.",
    "Modern experiments have confirmed the basic picture while adding many surprising details.",
    "A common mistake is to think that the process happens all at once, when in fact it unfolds in stages.",
    "Each stage depends on the one before it, so a problem early on affects everything that follows.",
    "Energy is never created or lost along the way; it is only converted from one form into another.",
    "The rate of the process depends on temperature, which is why seasons and climate matter so much.",
    "Scale is important here, because what is true for a single {thing} may not hold for a whole system.",
    "Textbooks often simplify this part, and that simplification can cause confusion later on.",
    "Measurements taken in the field usually vary more than the neat numbers printed in a textbook.",
    "One way to check your understanding is to predict what would happen if one ingredient were missing.",
    "The same principle turns up in surprising places, from kitchen experiments to industrial design.",
    "Researchers now use computer models to test ideas that would be impossible to try in a laboratory.",
    "Those models are only as good as the observations used to build them, so data collection still matters.",
    "In everyday language we often describe {actor} as if they had intentions, but nothing here is planned.",
    "The story becomes richer once you add time, because small effects build up over long periods.",
    "Understanding {c} also explains a number of things we usually take for granted.",
    "Students are often surprised to learn how recently some of these details were worked out.",
    "Graphs of real measurements rarely look as tidy as the idealised curves drawn in lecture notes.",
    "Each {thing} behaves slightly differently, yet the overall pattern is remarkably consistent.",
    "Specialists in {field} still argue about some of the finer points, which is a sign of a healthy field.",
    "It is worth separating what has been measured directly from what has been inferred indirectly.",
    "Once the main mechanism is clear, the exceptions become interesting rather than confusing.",
    "Good analogies help, but every analogy breaks down if you push it far enough.",
    "Much of what we know about {unit} comes from patient observation rather than dramatic breakthroughs.",
    "The process is easier to understand if you follow a single {thing} from beginning to end.",
)

CLASSROOM = (
    "A simple classroom demonstration uses everyday materials and takes about twenty minutes.",
    "Ask students to write down their predictions before the experiment, then compare them with the results.",
    "Working in pairs encourages pupils to explain their reasoning out loud, which deepens understanding.",
    "Teachers can extend the activity by asking groups to design a fair test of their own.",
    "Drawing a labelled diagram afterwards is one of the best ways to check what has been understood.",
    "For older students, a short written reflection helps connect the experiment to the underlying theory.",
    "Safety goggles should be worn whenever liquids are heated or mixed, even in simple demonstrations.",
    "Keep a record of the results on the board so the whole class can look for patterns together.",
)

HISTORY = (
    "The first careful description of {c} is usually credited to scholars working in the eighteenth century.",
    "For a long time the idea was controversial, and some respected scientists rejected it outright.",
    "Progress came in bursts, often after a new instrument made previously invisible details measurable.",
    "The modern explanation was pieced together by many researchers rather than by a single genius.",
    "Debates about {c} shaped how {field} itself is taught in schools today.",
)

QUESTIONS = (
    "What would change if the temperature doubled?",
    "Why does the process slow down at night or in the cold?",
    "Which part of the system stores the most energy?",
    "How could you measure the effect without expensive equipment?",
    "Where in daily life can you see the same principle at work?",
    "What evidence first convinced scientists that the idea was correct?",
)

KEY_FACTS = (
    "The process always follows the same basic sequence of steps.",
    "Energy is converted from one form into another, never destroyed.",
    "Temperature and pressure both change how fast things happen.",
    "Small changes can add up to very large effects over time.",
    "Careful measurement is the only reliable way to test a claim.",
    "The same rules apply in the laboratory and in the natural world.",
    "Models are simplified pictures that help us reason about reality.",
)

HEADINGS = {
    "explain": (
        "The basic idea",
        "A closer look",
        "Common misconceptions",
        "Why it matters",
        "Going further",
    ),
    "class": ("Try it in the classroom", "A simple activity", "Teaching notes"),
    "history": ("A short history", "How the idea developed"),
    "facts": ("Key points to remember", "Summary"),
    "q": ("Questions to think about", "Check your understanding"),
}


def article(rng: random.Random) -> Article:
    """An explainer or lesson note on one scientific concept."""
    concept = rng.choice(CONCEPTS)
    slots = {k: v for k, v in concept.items() if k != "title"}
    pool = SentencePool(
        rng,
        {
            "intro": INTRO,
            "explain": EXPLAIN,
            "class": CLASSROOM,
            "history": HISTORY,
            "q": QUESTIONS,
            "facts": KEY_FACTS,
            **{f"h_{k}": v for k, v in HEADINGS.items()},
        },
    )
    blocks: list[Block] = paragraphs(rng, pool.take("intro", 2) + pool.take("explain", 2), slots, (2, 4))
    for section in rng.sample(("explain", "class", "history", "explain"), rng.randint(2, 4)):
        blocks.append(Block("h2", pool.take(f"h_{section}", 1)[0]))
        blocks += paragraphs(rng, pool.take(section, rng.randint(3, 5)), slots)
    if rng.random() < 0.6:
        blocks.append(Block("h2", pool.take("h_facts", 1)[0]))
        blocks.append(Block("ul", items=tuple(pool.take("facts", rng.randint(3, 5)))))
    if rng.random() < 0.5:
        blocks.append(Block("h2", pool.take("h_q", 1)[0]))
        blocks.append(Block("ol", items=tuple(pool.take("q", rng.randint(3, 4)))))
    blocks += paragraphs(rng, pool.take("explain", 2), slots, (2, 2))
    return Article(
        concept["title"],
        "en",
        "science",
        tuple(blocks),
        byline=person(rng),
        dateline=dateline(rng),
        description=f"An accessible introduction to {concept['c']}.",
    )
