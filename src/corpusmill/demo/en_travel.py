"""English travel writing: destination guides and trip reports for invented places."""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, Block, SentencePool, dateline, paragraphs, person

PLACES = (
    {
        "place": "Porto Velha",
        "region": "the Atlantic coast",
        "kind": "harbour town",
        "sight": "the tiled fish market",
        "food": "grilled sardines",
        "walk": "the cliff path to the lighthouse",
    },
    {
        "place": "Kastelburg",
        "region": "the northern hills",
        "kind": "medieval town",
        "sight": "the castle ramparts",
        "food": "smoked trout",
        "walk": "the river trail through the beech forest",
    },
    {
        "place": "San Aurelio",
        "region": "the southern islands",
        "kind": "island village",
        "sight": "the whitewashed chapel",
        "food": "octopus stew",
        "walk": "the old mule track over the ridge",
    },
    {
        "place": "Lake Varnamo",
        "region": "the lake district",
        "kind": "lakeside resort",
        "sight": "the floating sauna",
        "food": "cloudberry pancakes",
        "walk": "the shoreline loop",
    },
    {
        "place": "Mirador Alto",
        "region": "the high plateau",
        "kind": "mountain village",
        "sight": "the terraced vineyards",
        "food": "slow roasted lamb",
        "walk": "the gorge trail",
    },
    {
        "place": "Bellacosta",
        "region": "the eastern riviera",
        "kind": "seaside city",
        "sight": "the glass arcade",
        "food": "lemon gelato",
        "walk": "the promenade at sunset",
    },
    {
        "place": "Tallinmoor",
        "region": "the Baltic shore",
        "kind": "old port",
        "sight": "the merchant houses",
        "food": "rye bread with herring",
        "walk": "the dune path",
    },
)

OPENING = (
    "I arrived in {place} on a grey {weekday} morning, with no plan beyond finding a decent coffee.",
    "Few travellers make it as far as {place}, which is a large part of its charm.",
    "{place} is a {kind} that rewards slow travel and punishes anyone in a hurry.",
    "Tucked away in {region}, {place} has been quietly welcoming visitors for centuries.",
    "We spent {days} days in {place} last {season}, and I am already planning a return trip.",
    "If you only have a weekend, {place} is one of the easiest escapes in {region}.",
    "A friend had been telling me about {place} for years before I finally went to see it for myself.",
    "The first thing you notice about {place} is the silence, broken only by gulls and church bells.",
)

BODY = (
    "The best way to arrive is by the regional train, which winds slowly along {region}.",
    "Start your day at {sight}, ideally before the tour groups wake up.",
    "Nothing prepares you for the view from the top of the old town on a clear evening.",
    "Locals are proud of their {food}, and every family seems to have its own version.",
    "We ate our best meal at a tiny place with six tables and no written menu.",
    "Allow at least half a day for {walk}, and bring more water than you think you need.",
    "Prices are noticeably lower than on the coast, especially outside the summer holidays.",
    "Most shops close for a long lunch, so plan your errands for the morning.",
    "The weekly market takes over the main square and is worth timing your visit around.",
    "Public transport is limited after dark, so check the last bus before heading out for dinner.",
    "Our guesthouse was run by a retired teacher who insisted on cooking breakfast for everyone.",
    "Spring and early autumn bring mild weather, fewer crowds and better prices.",
    "A small museum near the harbour explains the history of the region better than any guidebook.",
    "Cash is still preferred in many smaller cafes, although cards are becoming more common.",
    "The town is compact enough to explore on foot, and a bicycle opens up the surrounding countryside.",
    "Do try the local wine, which rarely leaves the region and costs very little by the glass.",
    "On our last evening we simply sat by the water and watched the light change for an hour.",
    "Be prepared for steep cobbled streets, which are lovely to look at and hard on the knees.",
    "Many of the best viewpoints are unsigned, so ask at your accommodation for directions.",
    "Learning a few words of the local language earned us smiles and, once, a free dessert.",
    "The crowds thin out dramatically just a few streets away from {sight}.",
    "If the weather turns, the covered galleries and small bookshops make rainy afternoons a pleasure.",
    "Sunday mornings are wonderfully quiet, with church bells and the smell of fresh bread.",
    "We met a fisherman who had lived in {place} all his life and had never wanted to leave.",
    "The tourist office is small but helpful, and the staff speak several languages.",
    "Boat trips run from the quay twice a day in summer and only at weekends in winter.",
    "A short bus ride inland brings you to villages where time seems to have stopped decades ago.",
    "The bakery opposite our room sold pastries still warm from the oven at seven in the morning.",
    "Evenings here are for long dinners, and nobody will rush you out of your seat.",
    "Street names changed twice in the last century, which explains why old maps can be confusing.",
    "The light in late afternoon turns the stone walls a warm shade of gold.",
    "Hiring a local guide for a morning was the best money we spent on the whole trip.",
    "There is a small beach just beyond the harbour wall that most visitors never find.",
    "We found the locals friendly but reserved, and conversations warmed up slowly over coffee.",
    "Seasonal festivals fill the streets with music, so check the calendar before you book.",
    "Our one regret is not staying longer, since two nights were nowhere near enough.",
    "Accessibility can be tricky in the old centre, where many buildings have steep stairs.",
    "Travelling with children was easy, thanks to the parks, the playgrounds and the patient waiters.",
)

PRACTICAL = (
    "Getting there: regional trains run every two hours, and the journey takes about {hours} hours.",
    "Where to stay: family run guesthouses offer the best value and the warmest welcome.",
    "When to go: {season} is ideal, with long days and comfortable temperatures.",
    "Budget: expect to spend around {budget} euros a day including food and a simple room.",
    "Getting around: everything in the centre is walkable, and taxis are cheap for longer trips.",
    "What to pack: comfortable shoes, a light rain jacket and a reusable water bottle.",
    "Staying connected: most cafes offer free wifi, but signal is patchy in the hills.",
)

HEADINGS = (
    "First impressions",
    "What to see",
    "Where to eat",
    "Getting off the beaten track",
    "Our favourite walk",
    "A day in {place}",
    "Slowing down",
    "What we would do differently",
)


def article(rng: random.Random) -> Article:
    """A destination guide or trip report for one place."""
    place = rng.choice(PLACES)
    slots = dict(
        place,
        weekday=("Tuesday", "Saturday", "Sunday"),
        days=("three", "four", "five", "six"),
        season=("spring", "autumn", "September", "May"),
        hours=("two", "three", "four"),
        budget=("60", "75", "90", "110"),
    )
    pool = SentencePool(rng, {"open": OPENING, "body": BODY, "practical": PRACTICAL, "head": HEADINGS})
    blocks: list[Block] = paragraphs(rng, pool.take("open", 2) + pool.take("body", 2), slots, (2, 4))
    for _ in range(rng.randint(2, 4)):
        blocks.append(Block("h2", pool.take("head", 1)[0].format(place=place["place"])))
        blocks += paragraphs(rng, pool.take("body", rng.randint(3, 5)), slots, (2, 3))
    blocks.append(Block("h2", "Practical information"))
    items = paragraphs(rng, pool.take("practical", rng.randint(4, 6)), slots, (1, 1))
    blocks.append(Block("ul", items=tuple(b.text for b in items)))
    title = rng.choice(
        (
            "A slow weekend in {}",
            "{}: a travel guide",
            "Why {} stole our hearts",
            "{} beyond the postcards",
            "Three days in {}",
        )
    ).format(place["place"])
    return Article(
        title,
        "en",
        "travel",
        tuple(blocks),
        byline=person(rng),
        dateline=dateline(rng),
        description=f"Travel notes from {place['place']} in {place['region']}.",
    )
