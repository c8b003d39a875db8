"""English local news stories: council decisions, infrastructure, schools, weather and business."""

from __future__ import annotations

import random

from corpusmill.demo.compose import (
    TOWNS,
    WEEKDAYS,
    Article,
    Block,
    SentencePool,
    dateline,
    paragraphs,
    person,
)

STORIES = (
    {
        "project": "a plan to rebuild the old harbor bridge",
        "short": "the bridge plan",
        "issue": "heavy trucks using the crossing",
        "thing": "bridge",
        "amount": "$14.6 million",
        "title": "Council approves {amount} rebuild of {place} harbor bridge",
    },
    {
        "project": "a new public library beside the market square",
        "short": "the library project",
        "issue": "the cramped reading rooms in the current building",
        "thing": "library",
        "amount": "$8.3 million",
        "title": "{place} to get a new library after years of debate",
    },
    {
        "project": "a proposal to close two rural primary schools",
        "short": "the school proposal",
        "issue": "falling enrolment in the outlying villages",
        "thing": "school",
        "amount": "$2.1 million",
        "title": "Parents push back against school closures in {place}",
    },
    {
        "project": "an expansion of the night bus network",
        "short": "the bus expansion",
        "issue": "late shift workers struggling to get home",
        "thing": "bus route",
        "amount": "$1.7 million",
        "title": "Night buses to run across {place} from next spring",
    },
    {
        "project": "new flood barriers along the river path",
        "short": "the flood barriers",
        "issue": "three serious floods in the past decade",
        "thing": "barrier",
        "amount": "$22 million",
        "title": "Flood defences for {place} riverside finally funded",
    },
    {
        "project": "the sale of the disused textile mill to a housing developer",
        "short": "the mill sale",
        "issue": "the shortage of affordable homes",
        "thing": "mill",
        "amount": "$5.9 million",
        "title": "Historic {place} mill sold for housing",
    },
    {
        "project": "a ban on cars in the old town on weekends",
        "short": "the weekend car ban",
        "issue": "crowded pavements and poor air quality",
        "thing": "street",
        "amount": "$650,000",
        "title": "{place} old town goes car-free on weekends",
    },
    {
        "project": "a community solar farm on the former landfill site",
        "short": "the solar farm",
        "issue": "rising electricity bills for households",
        "thing": "solar farm",
        "amount": "$11.2 million",
        "title": "Solar farm planned for former {place} landfill",
    },
)

BODIES = ("the town council", "the county board", "the regional planning committee", "the city assembly")

LEAD = (
    "Members of {body} voted {vote} on {weekday} evening to approve {project}, ending months of debate.",
    "After a meeting that ran past midnight, {body} backed {project} by a narrow margin.",
    "Residents of {place} will see work begin on {project} later this year, officials confirmed on "
    "{weekday}.",
    "A long-awaited decision on {project} was finally taken this week, and it has left few people "
    "indifferent.",
    "The future of {place} took a new turn on {weekday} when {body} signed off on {project}.",
    "{project} has cleared its final hurdle, according to a statement released by {body} on {weekday}.",
)

DETAIL = (
    "The scheme is expected to cost {amount}, most of which will come from a regional development grant.",
    "Supporters say the change is overdue and point to {issue} as the main reason to act now.",
    "Opponents argued that the money could be better spent on road repairs and youth services.",
    "The vote followed a public consultation that drew more than {n} written responses.",
    "Council staff told members that delaying again would add at least ten percent to the final bill.",
    "Work will be split into phases so that disruption to local traffic is kept to a minimum.",
    "A small group of protesters gathered outside the town hall with hand-painted signs before the meeting.",
    "Local businesses near the site have been promised compensation if access to their shops is blocked.",
    "The finance committee warned that the budget leaves very little room for unexpected costs.",
    "Engineers who surveyed the area last winter described its condition as worse than expected.",
    "Several members said they had changed their minds after visiting the site in person.",
    "The original proposal was first discussed almost six years ago but stalled during the pandemic.",
    "Independent auditors will review the spending every six months and publish their findings.",
    "Neighbouring districts are watching closely, since a similar plan is under discussion there.",
    "A spokesperson for the contractor said the company expected to hire around {n} local workers.",
    "The council has set up a telephone line and a weekly drop-in session for residents with questions.",
    "Critics noted that a previous project of the same size ran two years late and well over budget.",
    "Under the agreement, the land will remain in public ownership for at least fifty years.",
    "Residents who live closest to the work say they are worried about noise and dust during the summer.",
    "Figures presented at the meeting showed that demand in {place} has grown steadily since 2015.",
    "The plan also includes new cycle parking, wider pavements and better lighting around the site.",
    "Two members abstained, saying they had not been given enough time to read the final report.",
)

QUOTES = (
    '"This is the most important decision we have made in a generation," said {official}, who chairs {body}.',
    '"We listened carefully to every objection, and the plan is better because of it," {official} '
    "told reporters.",
    '"I understand why people are nervous, but doing nothing was never a real option," said {official}.',
    '"My family has lived here for four generations, and nobody asked us what we wanted," said {resident}.',
    '"If they keep their promises about the timetable, I will be the first to say thank you," said '
    "{resident}.",
    '"The numbers simply did not add up until the regional grant came through," explained {official}.',
    '"We have waited long enough, and our children deserve better than this," said {resident}, a parent.',
    '"It is a good idea in principle, but the details still worry me," admitted {resident}, who runs a cafe.',
)

CONTEXT = (
    "{place} has a population of about {pop} and has grown quickly since the railway line reopened.",
    "The town last faced a comparable decision in the early 1990s, when the ring road was built.",
    "Similar schemes in other parts of the country have had mixed results, according to a recent study.",
    "The regional government has promised to match local spending on projects of this kind until 2027.",
    "Elections for {body} are due next year, and the issue is likely to feature in the campaign.",
    "Local newspapers have covered the debate closely, and letters on the subject still arrive every week.",
    "Older residents remember when the area was dominated by factories that have long since closed.",
    "Housing costs in {place} have risen faster than wages for most of the past decade.",
    "Community groups have organised several public meetings, some of which attracted hundreds of people.",
    "The local chamber of commerce has said it broadly supports the plan but wants more detail on parking.",
)

OUTLOOK = (
    "A detailed timetable is expected to be published before the end of the month.",
    "The first contracts could be signed as early as {month}, officials said.",
    "Campaigners have not ruled out a legal challenge and say they are taking advice.",
    "Residents can view the full plans at the town hall or on the council website.",
    "The next public meeting on the subject is scheduled for the first {weekday} of {month}.",
    "Whatever happens next, the debate has shown how strongly people in {place} feel about their town.",
    "Progress will be reviewed at a special session in the autumn, when updated cost figures are due.",
    "For now, both sides say they will keep a close eye on how the money is spent.",
)

HEADINGS = (
    "What the decision means",
    "How the vote went",
    "Reaction from residents",
    "The cost in detail",
    "A long road to approval",
    "What happens next",
    "Why it matters",
    "Voices from the meeting",
)

COMMENTS = (
    "About time. The old one has been falling apart for years.",
    "I went to the consultation and nobody seemed to listen to anything we said.",
    "Good news for the town, as long as they actually finish it this time.",
    "Who is paying for all this? My council tax went up again in April.",
    "Thank you for covering this properly, the other paper barely mentioned it.",
)


def article(rng: random.Random) -> Article:
    """A local news story about a council decision, built from the tables above."""
    story = rng.choice(STORIES)
    place = rng.choice(TOWNS)
    official = person(rng)
    slots = {
        "place": place,
        "body": rng.choice(BODIES),
        "project": story["project"],
        "issue": story["issue"],
        "amount": story["amount"],
        "official": official,
        "resident": person,
        "vote": ("seven to four", "six to five", "nine to two", "unanimously", "eight to three"),
        "weekday": WEEKDAYS,
        "n": lambda r: str(r.randint(120, 2400)),
        "pop": lambda r: f"{r.randint(12, 140)},000",
        "month": ("March", "April", "June", "September", "October", "November"),
    }
    pool = SentencePool(
        rng,
        {
            "lead": LEAD,
            "detail": DETAIL,
            "quote": QUOTES,
            "context": CONTEXT,
            "outlook": OUTLOOK,
            "head": HEADINGS,
        },
    )
    size = rng.choice((1, 2, 2, 3))
    blocks: list[Block] = paragraphs(rng, pool.take("lead", 1) + pool.take("detail", 2), slots, (3, 3))
    for _ in range(size):
        blocks.append(Block("h2", pool.take("head", 1)[0]))
        chunk = pool.take("detail", rng.randint(3, 6)) + pool.take("quote", 1) + pool.take("context", 2)
        rng.shuffle(chunk)
        blocks += paragraphs(rng, chunk, slots)
    if size >= 2 and rng.random() < 0.35:
        rows = [
            ("Item", "Estimated cost"),
            ("Design and surveys", "12%"),
            ("Construction", "71%"),
            ("Contingency", "9%"),
            ("Public consultation and signage", "8%"),
        ]
        blocks.append(Block("table", "How the budget is split", rows=tuple(rows)))
    blocks += paragraphs(rng, pool.take("quote", 1) + pool.take("outlook", 2), slots, (3, 3))
    title = story["title"].format(place=place, amount=story["amount"])
    comments = tuple((person(rng), c) for c in rng.sample(COMMENTS, rng.randint(0, 3)))
    return Article(
        title,
        "en",
        "news",
        tuple(blocks),
        byline=person(rng),
        dateline=dateline(rng),
        description=f"Latest from {place}: {story['short']} explained.",
        comments=comments,
    )
