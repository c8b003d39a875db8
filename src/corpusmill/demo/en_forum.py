"""English forum threads: a question and several replies from different members of a hobby board."""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, Block, fill

HANDLES = (
    "greenfingers_72",
    "mossy_boots",
    "allotment_andy",
    "RidgeRunner",
    "gravel_grinder",
    "spoke_and_chain",
    "HopHead_Harry",
    "yeast_whisperer",
    "mash_tun_mike",
    "quietcompost",
    "muddy_trails_99",
    "brewdad",
    "PetalPusher",
    "SingletrackSue",
    "barleywine_bex",
    "tomato_tamsin",
    "switchback_sam",
    "KettleKate",
)

BOARDS = {
    "forum.gardenersrest.com": {
        "subjects": (
            "my tomato plants",
            "the raised beds",
            "our apple tree",
            "the lawn",
            "the courgettes",
            "my seedlings",
            "the compost heap",
            "the climbing roses",
        ),
        "problem": (
            "yellow leaves near the bottom",
            "a white powder on the leaves",
            "almost no fruit this year",
            "tiny holes in every leaf",
            "roots rotting after the wet spell",
        ),
        "where": (
            "a sunny south facing garden",
            "a heavy clay plot",
            "a windy allotment",
            "containers on a balcony",
        ),
        "tips": (
            "Water at the base in the early morning rather than spraying the leaves in the evening.",
            "A thick layer of mulch keeps the soil moist and stops the roots from drying out in hot spells.",
            "Clay soil holds water for ages, so dig in plenty of grit and well rotted manure over "
            "the winter.",
            "Pick off the worst affected leaves and put them in the bin rather than on the compost heap.",
            "Slugs are the usual culprits for holes like that; go out with a torch after dark and "
            "you will see.",
            "Feeding too much nitrogen gives you lovely leaves and almost no flowers or fruit.",
            "Crop rotation really does help, even on a small plot with only three or four beds.",
            "A cheap soil testing kit from the garden centre will tell you a lot about what is going on.",
        ),
    },
    "community.trailbikers.net": {
        "subjects": (
            "my rear shock",
            "the new tubeless tyres",
            "my hydraulic brakes",
            "the drivetrain",
            "my dropper post",
            "the headset",
            "my wheel bearings",
            "the chain",
        ),
        "problem": (
            "a knocking noise on rough descents",
            "a slow loss of pressure overnight",
            "a spongy feel at the lever",
            "skipping under load on climbs",
            "creaking whenever I stand up",
        ),
        "where": ("rocky local trails", "muddy winter loops", "long gravel rides", "steep forest tracks"),
        "tips": (
            "Bleeding the brakes properly fixed that spongy feeling for me, and it only took an evening.",
            "Check the torque on every bolt before blaming the expensive parts, since loose bolts "
            "creak the most.",
            "Fresh sealant every few months makes a huge difference to tubeless tyres in cold weather.",
            "A worn chain will wear out the cassette too, so measure it regularly with a cheap chain "
            "checker.",
            "Clean and regrease the pivots, because winter grit gets everywhere and grinds away at "
            "the bearings.",
            "Try running a few more clicks of rebound damping and see whether the knocking goes away.",
            "Take it to a shop with a proper workstand if you are not confident, it is money well spent.",
            "Write down your tyre pressures and suspension settings so you can go back if a change "
            "feels worse.",
        ),
    },
    "talk.homebrewersguild.org": {
        "subjects": (
            "my latest pale ale",
            "the stout I kegged last month",
            "a wheat beer",
            "my first lager",
            "the cider from our apples",
            "a simple bitter",
            "my fermenter",
            "the new grain mill",
        ),
        "problem": (
            "a sour taste that was not intended",
            "fermentation stopping after two days",
            "a cloudy finish that will not clear",
            "far too much foam when pouring",
            "an odd buttery smell",
        ),
        "where": (
            "a cold garage",
            "a small flat with no spare room",
            "a cellar that stays cool all year",
            "a shed with an old fridge",
        ),
        "tips": (
            "Temperature control is everything, so an old fridge with a cheap controller is a great upgrade.",
            "Sanitise everything that touches the beer after the boil, including the thermometer and "
            "the tap.",
            "Pitch more yeast than you think you need, and make sure it is healthy before it goes in.",
            "Give it another week on the yeast before bottling; patience cures a lot of off flavours.",
            "A buttery smell usually means the yeast was not given enough time to clean up after itself.",
            "Cold crashing for a couple of days before packaging helps a lot with clarity.",
            "Check your carbonation calculator, because overcarbonated beer will foam no matter what you do.",
            "Keep notes on every batch so you can compare what went right and what went wrong.",
        ),
    },
}

GREETING = (
    "Hi all, long time reader and first time poster here.",
    "Hello everyone, hoping someone can point me in the right direction.",
    "Morning all, I have a question that has been bugging me for weeks.",
    "Hi folks, I could really use the collective wisdom of this board.",
)

QUESTION = (
    "I have been having trouble with {subject} and I am running out of ideas.",
    "For the last few weeks I have noticed {problem}, and it seems to be getting worse.",
    "For context, I am working with {where}, which might be part of the problem.",
    "I have already tried the obvious things, including asking at my local shop.",
    "Has anyone here dealt with something similar, and what finally fixed it?",
    "Any advice would be very welcome, as I would rather not start again from scratch.",
    "I can post photos later if that would help anyone diagnose it.",
    "Apologies if this has been asked before, but the search did not turn up anything recent.",
    "My neighbour thinks I am overthinking it, but I would like to understand what is going on.",
    "I am fairly new to all of this, so please go easy on me if the answer is obvious.",
    "The strange thing is that everything was fine until about a month ago.",
    "Budget is a bit tight at the moment, so cheap fixes would be ideal.",
    "I read a few articles online, but they all seem to contradict each other.",
)

REPLY = (
    "I had exactly the same thing last year, and it turned out to be far simpler than I feared.",
    "Before you change anything else, check the basics, because that is where it usually goes wrong.",
    "In my experience {problem} is nearly always a sign of something happening weeks earlier.",
    "Do not panic; this is very common and almost always fixable.",
    "Photos would definitely help, especially close ups taken in daylight.",
    "I would change one thing at a time, otherwise you will never know what actually worked.",
    "Working with {where} makes a big difference, so the usual advice may not apply directly.",
    "The guide pinned at the top of this board covers this in detail and is worth reading twice.",
    "Someone at our club solved the same issue by being more patient and doing less, not more.",
    "I would not spend money on new kit until you have ruled out the cheap explanations.",
    "It might also be worth keeping notes, since patterns are much easier to spot on paper.",
    "Honestly, I think most of us learned this the hard way at some point.",
    "Have a look at the thread from last spring where a few of us compared notes on this.",
    "My guess is that the weather has played a part, because several people have mentioned it recently.",
    "If it helps, I am happy to show you what I do if you ever come along to a meet up.",
    "That sounds frustrating, but it is a good sign that you caught it early.",
    "Whatever you do, do not throw it all away yet, because these things often recover.",
    "There is a lot of conflicting advice out there, and most of it is written to sell you something.",
    "I went through three different fixes before I found the one that worked for me.",
    "The old timers at our club swear by the traditional method, and they are usually right.",
    "It is worth asking whether anything changed around the time the trouble started.",
    "Some of the replies here are spot on, and I would start with the cheapest suggestion.",
    "This board has helped me out of more holes than I care to admit, so you are in the right place.",
    "Keep us posted, because threads like this are useful for the next person with the same problem.",
)

FOLLOW = (
    "Thanks everyone, this is really helpful and gives me a lot to try.",
    "Update: I followed the advice above and things already look much better.",
    "Good call on changing one thing at a time; I had been doing far too much at once.",
    "I will report back in a couple of weeks once I see how it goes.",
    "Cheers for the link to the older thread, I had completely missed it.",
)


def _post(
    rng: random.Random, pool: list[str], k: int, slots: dict[str, tuple[str, ...] | str]
) -> tuple[str, ...]:
    sentences = [fill(pool.pop(), slots, rng) for _ in range(min(k, len(pool)))]
    paras: list[str] = []
    while sentences:
        n = rng.randint(1, 3)
        paras.append(" ".join(sentences[:n]))
        sentences = sentences[n:]
    return tuple(paras)


def article(rng: random.Random) -> Article:
    """A thread with a question, replies and sometimes an update from the original poster."""
    host = rng.choice(sorted(BOARDS))
    board = BOARDS[host]
    subject, problem, where = (rng.choice(board[k]) for k in ("subjects", "problem", "where"))
    slots: dict[str, tuple[str, ...] | str] = {"subject": subject, "problem": problem, "where": where}
    handles = rng.sample(HANDLES, 6)
    questions = rng.sample(QUESTION, len(QUESTION))
    replies = rng.sample(REPLY + board["tips"], len(REPLY) + len(board["tips"]))
    opening = _post(rng, questions, rng.randint(3, 6), slots)
    opening = (f"{rng.choice(GREETING)} {opening[0]}", *opening[1:])
    blocks = [Block("post", handles[0], items=opening)]
    for who in handles[1 : rng.randint(4, 6)]:
        blocks.append(Block("post", who, items=_post(rng, replies, rng.randint(2, 5), slots)))
    if rng.random() < 0.6:
        follow = rng.sample(FOLLOW, len(FOLLOW))
        blocks.append(Block("post", handles[0], items=_post(rng, follow, rng.randint(2, 3), slots)))
    title = rng.choice(
        ("Help with {}?", "Problem with {}", "Advice needed: {}", "Anyone else seeing this with {}?")
    )
    title = title.format(subject)
    return Article(
        title[:1].upper() + title[1:],
        "en",
        "forum",
        tuple(blocks),
        home=host,
        description=f"Discussion thread about {subject}.",
    )
