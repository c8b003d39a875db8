"""The quality dimensions and the domain taxonomy shared by the annotator, the distilled models and the mixer.

One list, used everywhere, so a label the annotator writes is a label the `domain` stage predicts and a mixture
recipe can name. Domains follow the Qwen2.5 report's examples of over-represented (e-commerce, social media,
entertainment) and high-value (technology, science, academic research) content, plus what a web crawl holds
besides; `other` catches the rest, so the annotator is never forced into a wrong label.
"""

from __future__ import annotations

from dataclasses import dataclass

SCORE_MIN = 0
SCORE_MAX = 5
OVERALL = "overall"


@dataclass(frozen=True)
class Label:
    """A name recipes and models use, and the one-line definition the annotator is shown."""

    name: str
    definition: str


QUALITY_DIMENSIONS: tuple[Label, ...] = (
    Label(
        "educational_value", "how much a reader learns: explanations, facts, reasoning useful beyond the page"
    ),
    Label("coherence", "fluent, grammatical prose whose sentences follow from one another"),
    Label("knowledge_density", "information per word: little filler, repetition or padding"),
    Label(
        "originality", "written by a person for readers, not template, spun or machine-generated boilerplate"
    ),
    Label(
        "safety",
        "free of hate, harassment, sexual content, personal data and dangerous instructions (5 = safe)",
    ),
)

DOMAINS: tuple[Label, ...] = (
    Label("e-commerce", "product listings, shop pages, prices, reviews written to sell"),
    Label("social-media", "forum threads, comments, posts and chat between users"),
    Label("entertainment", "celebrities, TV, film, games, gossip and fan content"),
    Label("news", "reporting of current events"),
    Label("technology", "software, hardware, programming practice, IT products"),
    Label("science", "natural and formal sciences explained for a general or specialist reader"),
    Label("academic-research", "papers, abstracts, theses and scholarly writing"),
    Label("education", "lessons, tutorials, course material, exam preparation"),
    Label("health", "medicine, fitness, nutrition and wellbeing"),
    Label("finance", "markets, business, economics, personal finance"),
    Label("law-and-government", "laws, regulations, public administration and politics"),
    Label("arts-and-culture", "literature, music, visual arts, history and religion"),
    Label("sports", "sports events, teams and athletes"),
    Label("lifestyle", "food, travel, home, fashion, hobbies and relationships"),
    Label("reference", "encyclopedic entries, dictionaries, documentation and how-to references"),
    Label("code", "source code or text that is mostly code"),
    Label("math", "mathematics: problems, proofs, formulas"),
    Label("other", "anything that fits none of the above"),
)

DIMENSION_NAMES: tuple[str, ...] = tuple(label.name for label in QUALITY_DIMENSIONS)
DOMAIN_NAMES: tuple[str, ...] = tuple(label.name for label in DOMAINS)


def score_column(dimension: str) -> str:
    """`score__<dimension>`: the column a quality score travels in (`score__quality` for the overall score)."""
    return f"score__{'quality' if dimension == OVERALL else dimension}"


def check_domain(name: str) -> str:
    """Return `name` if it is in the taxonomy; the error lists the allowed names (recipes are checked with it)."""
    if name not in DOMAIN_NAMES:
        raise ValueError(f"unknown domain {name!r}; allowed: {', '.join(DOMAIN_NAMES)}")
    return name
