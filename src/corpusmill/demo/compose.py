"""Turn hand-written sentence templates into varied articles.

Every page of the demo crawl is assembled from sentences written for it, with slots (`{city}`, `{dish}`)
filled per page or per sentence. Templates are drawn without replacement inside a page, so a page never
repeats itself (the Gopher repetition rules would reject it), while two pages on the same topic share only
some sentences and few word 5-grams (so they are not near duplicates of each other by accident).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

SLOT = re.compile(r"\{(\w+)\}")

# A slot value: a fixed string for the whole page, a pool to draw from per use, or a generator.
SlotValue = str | tuple[str, ...] | Callable[[random.Random], str]


@dataclass(frozen=True)
class Block:
    """One block of article content: a heading, a paragraph, a list, a table or a code listing."""

    kind: str  # "h2" | "p" | "ul" | "ol" | "table" | "pre" | "quote"
    text: str = ""
    items: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Article:
    """The main content of a page, independent of the site chrome it is served in."""

    title: str
    lang: str
    topic: str
    blocks: tuple[Block, ...]
    byline: str = ""
    dateline: str = ""
    description: str = ""
    comments: tuple[tuple[str, str], ...] = field(default=())
    home: str = ""  # host that first published it, when the content only fits one site

    def with_blocks(self, blocks: Sequence[Block]) -> Article:
        """Return a copy with other content blocks (used to derive near duplicates)."""
        return replace(self, blocks=tuple(blocks))

    def body_text(self) -> str:
        """Plain text of the content blocks, for word counts and shingle checks."""
        parts: list[str] = []
        for block in self.blocks:
            if block.text:
                parts.append(block.text)
            parts.extend(block.items)
            parts.extend(" ".join(row) for row in block.rows)
        return "\n".join(parts)


def fill(template: str, slots: Mapping[str, SlotValue], rng: random.Random) -> str:
    """Fill every `{slot}` of a template; a missing slot is a bug in the template table, so it raises."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in slots:
            raise KeyError(f"demo template slot {name!r} has no value in: {template!r}")
        value = slots[name]
        if isinstance(value, str):
            return value
        if isinstance(value, tuple):
            return rng.choice(value)
        return value(rng)

    text = SLOT.sub(one, template)
    return text[:1].upper() + text[1:]


def paragraphs(
    rng: random.Random,
    sentences: Sequence[str],
    slots: Mapping[str, SlotValue],
    per_paragraph: tuple[int, int] = (2, 4),
    joiner: str = " ",
) -> list[Block]:
    """Fill the given templates and group them into paragraphs of a few sentences each."""
    filled = [fill(s, slots, rng) for s in sentences]
    blocks: list[Block] = []
    i = 0
    while i < len(filled):
        n = rng.randint(*per_paragraph)
        blocks.append(Block("p", joiner.join(filled[i : i + n])))
        i += n
    return blocks


class SentencePool:
    """Templates for one page, consumed without replacement so no sentence appears twice on it."""

    def __init__(self, rng: random.Random, pools: Mapping[str, Sequence[str]]) -> None:
        self._rng = rng
        self._left = {name: rng.sample(list(pool), len(pool)) for name, pool in pools.items()}

    def take(self, name: str, k: int) -> list[str]:
        """Take up to `k` unused templates from the named pool."""
        left = self._left[name]
        taken, self._left[name] = left[:k], left[k:]
        return taken


def person(rng: random.Random) -> str:
    """An invented full name, so quotes and bylines vary across pages."""
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


FIRST_NAMES = (
    "Amara",
    "Ben",
    "Chiara",
    "Daniel",
    "Elena",
    "Farid",
    "Grace",
    "Hiroshi",
    "Ingrid",
    "Jonas",
    "Kavya",
    "Liam",
    "Marisol",
    "Nadia",
    "Oscar",
    "Priya",
    "Quentin",
    "Rosa",
    "Samuel",
    "Tessa",
    "Umar",
    "Valerie",
    "Wei",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Aidan",
    "Beatriz",
    "Callum",
    "Dalia",
    "Emeka",
    "Fiona",
    "Gustavo",
    "Hannah",
    "Ivan",
    "Julia",
    "Kofi",
    "Leila",
    "Mateo",
    "Nora",
)
LAST_NAMES = (
    "Abernathy",
    "Bauer",
    "Castellanos",
    "Dubois",
    "Eriksen",
    "Fontaine",
    "Guerrero",
    "Halvorsen",
    "Ibarra",
    "Jablonski",
    "Kowalczyk",
    "Lindqvist",
    "Mbeki",
    "Nakamura",
    "Okafor",
    "Pellegrini",
    "Quinlan",
    "Rahman",
    "Sorensen",
    "Takahashi",
    "Underwood",
    "Varga",
    "Whitfield",
    "Xu",
    "Yilmaz",
    "Zielinski",
    "Ashworth",
    "Brennan",
    "Delacroix",
    "Ferreira",
    "Gallagher",
    "Hargreaves",
    "Iyer",
    "Kerrigan",
    "Moreau",
    "Novak",
)
TOWNS = (
    "Ashford Vale",
    "Brindlemoor",
    "Carrow Bay",
    "Dunmore Heights",
    "Eastwick Falls",
    "Fallowmere",
    "Glenhaven",
    "Harrowgate Junction",
    "Ironbridge Hollow",
    "Juniper Creek",
    "Kestrel Point",
    "Larkspur",
    "Millbrook",
    "Northam Ridge",
    "Oakhurst",
    "Pennington Cross",
    "Quarry Hill",
    "Redfern Harbor",
    "Saltmarsh",
    "Thornbury",
    "Upton Lea",
    "Valemont",
    "Westerfield",
    "Yarrowby",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
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


def dateline(rng: random.Random) -> str:
    """A publication date in 2023 or 2024, written the way English news sites print it."""
    return f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.choice(('2023', '2024'))}"


def simple_article(
    rng: random.Random,
    lang: str,
    topic: str,
    sentences: Sequence[str | tuple[str, ...]],
    slots: Mapping[str, SlotValue],
    title: str,
    heading: str,
    ordered: bool = False,
    joiner: str = " ",
) -> Article:
    """A two-part article from one sentence pool; `ordered` keeps pool order (recipe steps, narratives).

    A pool entry may be a tuple of alternative phrasings of the same sentence; one is picked per page.
    """
    count = rng.randint(len(sentences) // 4 + 2, len(sentences) // 3 + 2)
    picked = sorted(rng.sample(range(len(sentences)), count))
    order = picked if ordered else rng.sample(picked, count)
    chosen = [s if isinstance(s, str) else rng.choice(s) for s in (sentences[i] for i in order)]
    split = rng.randint(count // 3, count // 2 + 1)
    blocks = paragraphs(rng, chosen[:split], slots, (2, 3), joiner)
    blocks.append(Block("h2", heading))
    blocks += paragraphs(rng, chosen[split:], slots, (2, 3), joiner)
    filled_title = fill(title, {k: v for k, v in slots.items() if isinstance(v, str)}, rng)
    return Article(filled_title, lang, topic, tuple(blocks), description=filled_title)


def topic_article(
    rng: random.Random,
    lang: str,
    topic: str,
    pools: Mapping[str, Sequence[str | tuple[str, ...]]],
    titles: Mapping[str, Sequence[str]],
    headings: Mapping[str, str],
    slots: Mapping[str, SlotValue],
) -> Article:
    """A page of one language's news/travel/cooking set: its pool, one of its titles, its heading.

    Recipes keep their sentence order (steps follow one another); the other topics are shuffled.
    """
    title = rng.choice(titles[topic])
    return simple_article(
        rng, lang, topic, pools[topic], slots, title, headings[topic], ordered=topic == "cooking"
    )
