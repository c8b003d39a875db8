"""English health pages: fitness, nutrition and sleep advice, and common conditions explained for patients.

Each page covers one subject the way clinic leaflets and health magazines do: what is going on in the body,
what helps, what the evidence says, and when to see a professional. The vocabulary (symptoms, clinicians,
habits, measurements) is kept distinct from the science explainers so a domain classifier has something to
learn from, and every page is long and plain enough to pass the standard quality filters.
"""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, Block, SentencePool, dateline, paragraphs, person

SUBJECTS = (
    {
        "group": "condition",
        "s": "lower back pain",
        "area": "the lower back",
        "sign": "stiffness that is worst first thing in the morning",
        "habit": "staying gently active",
        "pro": "physiotherapist",
        "measure": "how far you can walk before the pain starts",
        "title": "Lower back pain: why rest is rarely the answer",
    },
    {
        "group": "condition",
        "s": "tension headaches",
        "area": "the muscles of the neck and scalp",
        "sign": "a tight band of pressure around the forehead",
        "habit": "regular breaks from the screen",
        "pro": "GP",
        "measure": "how many headache days you have each month",
        "title": "Tension headaches: causes, triggers and simple relief",
    },
    {
        "group": "condition",
        "s": "high blood pressure",
        "area": "the heart and blood vessels",
        "sign": "usually no symptoms at all",
        "habit": "cutting back on salt",
        "pro": "practice nurse",
        "measure": "a home blood pressure reading",
        "title": "High blood pressure explained: the silent risk worth checking",
    },
    {
        "group": "condition",
        "s": "type 2 diabetes",
        "area": "the way the body handles blood sugar",
        "sign": "tiredness, thirst and passing more urine than usual",
        "habit": "a daily walk after the main meal",
        "pro": "diabetes nurse",
        "measure": "the HbA1c blood test",
        "title": "Living with type 2 diabetes: a practical guide for the first year",
    },
    {
        "group": "condition",
        "s": "hay fever",
        "area": "the nose, eyes and throat",
        "sign": "sneezing and itchy, watering eyes on high pollen days",
        "habit": "checking the pollen forecast",
        "pro": "pharmacist",
        "measure": "which weeks of the year your symptoms peak",
        "title": "Hay fever season: what actually helps",
    },
    {
        "group": "fitness",
        "s": "strength training",
        "area": "muscles, bones and joints",
        "sign": "mild muscle soreness a day or two after a session",
        "habit": "two short sessions a week",
        "pro": "personal trainer",
        "measure": "the weight you can lift for ten clean repetitions",
        "title": "Strength training for beginners: a sensible first eight weeks",
    },
    {
        "group": "fitness",
        "s": "brisk walking",
        "area": "the heart and lungs",
        "sign": "breathing harder while still being able to talk",
        "habit": "a thirty minute walk most days",
        "pro": "physiotherapist",
        "measure": "your daily step count",
        "title": "Why brisk walking is the most underrated exercise",
    },
    {
        "group": "fitness",
        "s": "starting to run",
        "area": "the legs, heart and lungs",
        "sign": "aching shins if the distance rises too quickly",
        "habit": "alternating running and walking",
        "pro": "sports physiotherapist",
        "measure": "how long you can run without stopping",
        "title": "From the sofa to your first 5k without getting injured",
    },
    {
        "group": "nutrition",
        "s": "dietary fibre",
        "area": "the gut",
        "sign": "bloating if intake rises too fast",
        "habit": "eating wholegrains, beans and vegetables every day",
        "pro": "dietitian",
        "measure": "grams of fibre per day",
        "title": "Fibre: the nutrient most of us are not getting enough of",
    },
    {
        "group": "nutrition",
        "s": "protein in later life",
        "area": "the muscles",
        "sign": "a gradual loss of strength and balance",
        "habit": "including a source of protein at every meal",
        "pro": "dietitian",
        "measure": "grams of protein per kilogram of body weight",
        "title": "Protein after fifty: how much you need and where to find it",
    },
    {
        "group": "nutrition",
        "s": "staying hydrated",
        "area": "the kidneys and the brain",
        "sign": "dark yellow urine and a dull afternoon headache",
        "habit": "keeping a glass of water within reach",
        "pro": "dietitian",
        "measure": "the colour of your urine",
        "title": "How much water do you really need to drink?",
    },
    {
        "group": "sleep",
        "s": "insomnia",
        "area": "the body clock",
        "sign": "lying awake for more than half an hour most nights",
        "habit": "getting up at the same time every day",
        "pro": "sleep specialist",
        "measure": "a two week sleep diary",
        "title": "Insomnia: why trying harder to sleep makes it worse",
    },
    {
        "group": "sleep",
        "s": "shift work and sleep",
        "area": "the body clock",
        "sign": "feeling drowsy on the drive home after a night shift",
        "habit": "a dark, quiet bedroom during the day",
        "pro": "occupational health nurse",
        "measure": "how many hours you sleep across a full week",
        "title": "Sleeping well when you work nights",
    },
)

INTRO = (
    "Ask a room full of adults about {s} and almost everyone will have a story to tell.",
    "{s} is one of the most common reasons people look for health advice, and one of the most misunderstood.",
    "Most of what matters about {s} comes down to a handful of everyday choices.",
    "This guide explains {s} in plain language: what is happening, what helps and when to get advice.",
    "Every {pro} we spoke to said the same thing: small, steady changes beat dramatic ones.",
    "The good news about {s} is that there is a lot you can do for yourself.",
    "If you have been putting off thinking about {s}, this is a gentle place to start.",
)

CONDITION = (
    "In most cases {s} is not a sign of anything serious, even when it feels very unpleasant.",
    "The problem usually involves {area}, which is why the symptoms can seem to move around.",
    "A typical early sign is {sign}.",
    "Symptoms often come and go, and a good week can be followed by a bad one for no obvious reason.",
    "Stress, poor sleep and long periods of sitting all tend to make things worse.",
    "Your {pro} will usually ask about your daily routine before suggesting any tests.",
    "Scans are rarely needed, and they often show changes that have nothing to do with the symptoms.",
    "It helps to keep track of {measure}, because patterns are easier to see over several weeks.",
    "Medication can ease the symptoms, but it works best alongside changes to daily habits.",
    "Many people find that {habit} makes a bigger difference than any tablet.",
    "The condition is more common with age, but it affects plenty of younger adults too.",
    "Family history plays a part, so it is worth asking relatives about their own experience.",
    "Painkillers bought over the counter are fine for short spells but should not be taken every day.",
    "Waiting for the problem to go away on its own is reasonable at first, as long as it is improving.",
    "Recovery is rarely a straight line, and setbacks do not mean that the treatment has failed.",
    "Keeping a simple diary of symptoms, food and sleep often reveals triggers nobody had suspected.",
)

FITNESS = (
    "Current guidelines suggest about 150 minutes of moderate activity a week for most adults.",
    "A sensible plan builds up slowly, adding no more than about ten percent each week.",
    "The first few weeks are about building a habit rather than chasing results.",
    "It is normal to notice {sign}, and it usually settles as the body adapts.",
    "Good technique matters far more than the amount of weight or the distance covered.",
    "A short warm up of brisk movement prepares {area} and lowers the risk of strains.",
    "Rest days are part of the training, because the body gets stronger while it recovers.",
    "Progress is easiest to see if you note {measure} once a fortnight.",
    "Most beginners find that {habit} fits into a busy week more easily than long sessions.",
    "Sharp or worsening pain is different from ordinary effort and is a reason to stop.",
    "Comfortable shoes and loose clothing are all the equipment most people need at the start.",
    "Exercising with a friend makes it far more likely that you will keep going.",
    "Even people with long term conditions usually benefit, although they should check with a {pro} first.",
    "Regular activity improves mood and sleep within a few weeks, long before the body changes shape.",
    "There is no need for expensive gym memberships, since stairs, parks and a living room floor all work.",
    "Missing a session is not a failure, and the best plan is simply to carry on with the next one.",
)

NUTRITION = (
    "Most adults in surveys eat less than the recommended amount, often by a wide margin.",
    "The easiest approach is to change one meal at a time rather than the whole diet at once.",
    "A useful target is {habit}, which most households can manage without special products.",
    "Food labels list the content per portion and per hundred grams, and the second is easier to compare.",
    "Increasing intake too quickly can cause {sign}, so it is better to go gradually.",
    "Supplements are rarely necessary for healthy adults who eat a varied diet.",
    "Tinned and frozen foods count just as much as fresh ones and are often cheaper.",
    "A {pro} can help if you have a medical condition that limits what you can eat.",
    "Tracking {measure} for a week or two shows where the easiest gains are.",
    "Breakfast is a good place to start, because it is the meal people change most easily.",
    "Needs change with age, illness and activity, so there is no single right number for everyone.",
    "Eating well does not mean giving up favourite foods, only making them less of the everyday pattern.",
    "Cooking at home, even simply, gives far more control over what goes into a meal.",
    "Children copy what adults eat, so changes made for one person often help the whole family.",
    "Headlines about single superfoods are best ignored, since it is the overall pattern that counts.",
)

SLEEP = (
    "Most adults need between seven and nine hours, but the quality of sleep matters as much as the length.",
    "Sleep is controlled by {area}, which responds above all to light and to regular routines.",
    "A common complaint is {sign}.",
    "Getting up at the same time every day, including weekends, steadies the body clock within weeks.",
    "Bright light in the morning and dim light in the evening are powerful signals to the brain.",
    "Caffeine lingers in the body for many hours, so an afternoon coffee can still affect the night.",
    "Alcohol may help people fall asleep but makes the second half of the night lighter and more broken.",
    "A {pro} may suggest keeping {measure} before deciding on any treatment.",
    "Lying in bed awake for long periods teaches the brain to link the bed with being alert.",
    "Sleeping tablets can help for a few nights but lose their effect and are not a long term answer.",
    "Talking therapies designed for sleep problems work for most people and keep working after they end.",
    "Naps are fine for many people, as long as they are short and taken before mid afternoon.",
    "A cool, dark and quiet bedroom helps, although routine matters more than gadgets.",
    "Worrying about sleep is one of the most common reasons people cannot sleep.",
    "Many people find that {habit} is the single change that makes the most difference.",
)

GENERAL = (
    "What suits one person may not suit another, so it is worth experimenting carefully.",
    "Changes made in the first month are often the hardest, and they get easier with repetition.",
    "Family and friends can help more than they realise, simply by joining in.",
    "Age is rarely a reason not to start, and older adults often gain the most.",
    "It is sensible to review how things are going after about three months.",
    "Money is not the main barrier, since most of the helpful habits cost nothing.",
    "The internet is full of confident claims, and the more dramatic ones are usually wrong.",
    "People with busy jobs and young children can still make progress in small pockets of time.",
    "A setback after a holiday or an illness is normal and does not undo earlier progress.",
    "Feeling better tends to come before any change shows up in tests or measurements.",
    "It is easy to underestimate how much daily routines shape long term health.",
    "Local services, from walking groups to pharmacy clinics, are often free and underused.",
)

EVIDENCE = (
    "Large studies that followed thousands of adults for many years point in the same direction.",
    "The research is strongest for simple habits, and much weaker for the products advertised online.",
    "Trials comparing different approaches usually find that the one people stick with works best.",
    "Researchers are still working out why some people respond quickly and others take months.",
    "Guidance from national health services is reviewed every few years as new evidence comes in.",
    "Much of the advice shared on social media is based on tiny studies or none at all.",
    "Results in real life tend to be more modest than in trials, but they are still worthwhile.",
)

QUOTES = (
    '"People often expect a quick fix, but the body responds to what you do most days," says {expert}, a {pro}.',
    '"I tell my patients to start smaller than they think they should," explains {expert}.',
    '"The biggest change I see is when people stop waiting for the perfect moment," says {expert}, a {pro}.',
    '"Most of the worry comes from not knowing what is normal," says {expert}.',
)

DOCTOR = (
    "See a doctor promptly if symptoms are sudden and severe, or if you feel very unwell.",
    "Get advice if things have not improved after four to six weeks of sensible self care.",
    "Any unexplained weight loss, fever or night sweats should always be checked.",
    "Ask for an urgent appointment if new symptoms appear alongside numbness or weakness.",
    "A pharmacist can advise on over the counter treatments and tell you when a GP visit is needed.",
    "If you are pregnant or have a long term condition, speak to your care team before making changes.",
    "Call emergency services for chest pain, difficulty breathing or sudden confusion.",
)

TIPS = (
    "Start with one change and keep it up for a fortnight before adding another.",
    "Write down {measure} once a week to see real progress.",
    "Make {habit} part of a routine you already have.",
    "Tell a friend or family member what you are trying to do.",
    "Plan for bad days rather than hoping they will not happen.",
    "Ask your {pro} which local services and classes are available.",
    "Be wary of products that promise fast results.",
    "Celebrate small improvements, since they add up over months.",
)

EXPLAIN = {"condition": CONDITION, "fitness": FITNESS, "nutrition": NUTRITION, "sleep": SLEEP}

HEADINGS = {
    "explain": (
        "What is going on",
        "The basics",
        "What the evidence says",
        "What helps",
        "Common myths",
        "Making it stick",
    ),
    "doctor": ("When to see a doctor", "When to get help", "Getting professional advice"),
    "tips": ("Practical tips", "Things to try this week", "Quick summary"),
}


def article(rng: random.Random) -> Article:
    """A patient guide or magazine feature on one health subject."""
    subject = rng.choice(SUBJECTS)
    slots = {k: v for k, v in subject.items() if k not in ("title", "group")}
    slots["expert"] = person(rng)
    pool = SentencePool(
        rng,
        {
            "intro": INTRO,
            "explain": EXPLAIN[subject["group"]] + GENERAL,
            "evidence": EVIDENCE,
            "quote": QUOTES,
            "doctor": DOCTOR,
            "tips": TIPS,
            **{f"h_{k}": v for k, v in HEADINGS.items()},
        },
    )
    blocks: list[Block] = paragraphs(rng, pool.take("intro", 2) + pool.take("explain", 2), slots, (2, 4))
    for _ in range(rng.randint(2, 3)):
        blocks.append(Block("h2", pool.take("h_explain", 1)[0]))
        chunk = pool.take("explain", rng.randint(3, 4)) + pool.take("evidence", rng.randint(0, 1))
        if rng.random() < 0.4:
            chunk += pool.take("quote", 1)
        blocks += paragraphs(rng, chunk, slots)
    if rng.random() < 0.7:
        blocks.append(Block("h2", pool.take("h_tips", 1)[0]))
        tips = paragraphs(rng, pool.take("tips", rng.randint(3, 5)), slots, (1, 1))
        blocks.append(Block("ul", items=tuple(b.text for b in tips)))
    if subject["group"] == "condition" or rng.random() < 0.4:
        blocks.append(Block("h2", pool.take("h_doctor", 1)[0]))
        blocks += paragraphs(rng, pool.take("doctor", rng.randint(2, 4)), slots, (2, 4))
    blocks += paragraphs(rng, pool.take("explain", 2), slots, (2, 2))
    return Article(
        subject["title"],
        "en",
        "health",
        tuple(blocks),
        byline=person(rng),
        dateline=dateline(rng),
        description=f"A practical, evidence-based guide to {subject['s']}.",
    )
