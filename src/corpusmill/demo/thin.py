"""Thin pages: fluent SEO and affiliate filler that passes the heuristic filters yet teaches nothing.

Content farms publish listicles ("Top 10 ... you need to know in 2024"), vague buying guides and padded
advice: grammatical sentences, enough stop words and punctuation, no repeated lines, and no information.
The Gopher, C4 and FineWeb rules cannot see the difference, which is the point of this kind: it is what a
learned quality score and a quality floor in the mix must remove. Each page is assembled from generic
filler drawn without replacement (so it never repeats itself) around a topic keyword and a list of vague
"tips", and is served by one of the content-farm hosts in `sites.FARM_HOSTS`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from corpusmill.demo.compose import Article, Block, SentencePool, dateline, fill, paragraphs, person
from corpusmill.demo.sites import farms_for


@dataclass(frozen=True)
class Theme:
    """A keyword phrase a farm targets (a plural noun phrase), its imagined reader, and vague list entries."""

    kw: str
    who: str
    items: tuple[str, ...]


# Per topic, the themes its filler pages are written around.
THEMES: dict[str, tuple[Theme, ...]] = {
    "shop": (
        Theme(
            kw="wireless earbuds",
            who="music lovers",
            items=(
                "Sound quality",
                "Battery life",
                "Comfort and fit",
                "Price",
                "Brand reputation",
                "Design",
                "Noise cancellation",
                "Water resistance",
                "Warranty",
                "Customer reviews",
                "Connectivity",
            ),
        ),
        Theme(
            kw="kitchen gadgets",
            who="home cooks",
            items=(
                "Versatility",
                "Ease of cleaning",
                "Build quality",
                "Size and storage",
                "Price",
                "Safety features",
                "Design",
                "Value for money",
                "Ease of use",
                "Customer reviews",
            ),
        ),
        Theme(
            kw="office chairs",
            who="remote workers",
            items=(
                "Comfort",
                "Adjustability",
                "Lumbar support",
                "Materials",
                "Price",
                "Style",
                "Durability",
                "Armrests",
                "Assembly",
                "Warranty",
            ),
        ),
    ),
    "travel": (
        Theme(
            kw="budget travel hacks",
            who="travelers on a budget",
            items=(
                "Plan ahead",
                "Be flexible",
                "Travel light",
                "Use travel apps",
                "Eat like a local",
                "Avoid tourist traps",
                "Look for deals",
                "Travel off season",
                "Stay organized",
                "Have fun",
            ),
        ),
        Theme(
            kw="packing tips",
            who="first time travelers",
            items=(
                "Make a list",
                "Roll your clothes",
                "Pack versatile items",
                "Bring the essentials",
                "Use packing cubes",
                "Leave room for souvenirs",
                "Check the weather",
                "Keep valuables close",
                "Do not overpack",
                "Stay organized",
            ),
        ),
        Theme(
            kw="beach vacations",
            who="families",
            items=(
                "Choose the right destination",
                "Pick the right time",
                "Book early",
                "Bring sunscreen",
                "Stay hydrated",
                "Try new activities",
                "Relax and unwind",
                "Take lots of photos",
                "Respect the environment",
                "Make memories",
            ),
        ),
    ),
    "health": (
        Theme(
            kw="weight loss tips",
            who="busy people",
            items=(
                "Drink more water",
                "Eat healthy",
                "Get enough sleep",
                "Exercise regularly",
                "Avoid junk food",
                "Stay motivated",
                "Reduce stress",
                "Track your progress",
                "Be consistent",
                "Listen to your body",
            ),
        ),
        Theme(
            kw="healthy habits",
            who="anyone who wants to feel better",
            items=(
                "Start your day right",
                "Move more",
                "Eat more fruits and vegetables",
                "Take breaks",
                "Practice gratitude",
                "Limit screen time",
                "Sleep well",
                "Stay positive",
                "Spend time outdoors",
                "Be kind to yourself",
            ),
        ),
        Theme(
            kw="superfoods",
            who="health conscious readers",
            items=(
                "Berries",
                "Leafy greens",
                "Nuts and seeds",
                "Whole grains",
                "Green tea",
                "Avocados",
                "Fish",
                "Yogurt",
                "Dark chocolate",
                "Beans",
            ),
        ),
    ),
    "finance": (
        Theme(
            kw="ways to save money",
            who="families",
            items=(
                "Make a budget",
                "Cut unnecessary expenses",
                "Cook at home",
                "Use coupons",
                "Avoid impulse buying",
                "Set financial goals",
                "Shop around",
                "Automate your savings",
                "Review your subscriptions",
                "Be patient",
            ),
        ),
        Theme(
            kw="passive income ideas",
            who="beginners",
            items=(
                "Start a blog",
                "Invest in stocks",
                "Create an online course",
                "Rent out your space",
                "Sell digital products",
                "Affiliate marketing",
                "Start a YouTube channel",
                "Write an ebook",
                "Invest in real estate",
                "Build an app",
            ),
        ),
        Theme(
            kw="credit cards",
            who="smart shoppers",
            items=(
                "Rewards",
                "Interest rates",
                "Annual fees",
                "Sign up bonuses",
                "Credit limit",
                "Customer service",
                "Travel perks",
                "Security features",
                "Ease of approval",
                "Mobile app",
            ),
        ),
    ),
    "software": (
        Theme(
            kw="productivity apps",
            who="professionals",
            items=(
                "Ease of use",
                "Features",
                "Integrations",
                "Pricing",
                "Customer support",
                "Security",
                "Mobile access",
                "Collaboration",
                "Customization",
                "Updates",
            ),
        ),
        Theme(
            kw="VPN services",
            who="everyday internet users",
            items=(
                "Speed",
                "Privacy",
                "Server locations",
                "Price",
                "Ease of use",
                "Device support",
                "Customer support",
                "Security",
                "Streaming",
                "Free trial",
            ),
        ),
        Theme(
            kw="website builders",
            who="small business owners",
            items=(
                "Templates",
                "Ease of use",
                "Pricing",
                "SEO tools",
                "Customer support",
                "Speed",
                "Flexibility",
                "Integrations",
                "Security",
                "Scalability",
            ),
        ),
    ),
    "cooking": (
        Theme(
            kw="easy dinner ideas",
            who="busy families",
            items=(
                "Pasta dishes",
                "Stir fry",
                "Sheet pan meals",
                "Soups",
                "Tacos",
                "Salads",
                "Slow cooker meals",
                "Rice bowls",
                "Breakfast for dinner",
                "Leftovers",
            ),
        ),
        Theme(
            kw="meal prep tips",
            who="beginners",
            items=(
                "Plan your meals",
                "Make a shopping list",
                "Buy quality containers",
                "Cook in batches",
                "Keep it simple",
                "Use versatile ingredients",
                "Store food properly",
                "Prep snacks",
                "Try new recipes",
                "Stay consistent",
            ),
        ),
        Theme(
            kw="air fryer recipes",
            who="home cooks",
            items=(
                "Crispy fries",
                "Chicken wings",
                "Vegetables",
                "Snacks",
                "Desserts",
                "Fish",
                "Breakfast ideas",
                "Reheating leftovers",
                "Frozen foods",
                "Homemade chips",
            ),
        ),
    ),
}

TITLES = (
    "Top {n} {Kw} You Need to Know in 2024",
    "{n} Best {Kw} of 2024: The Ultimate Guide",
    "The Ultimate Guide to {Kw} (Everything You Need to Know)",
    "{n} Amazing {Kw} That Will Change Your Life",
    "{Kw}: {n} Things Nobody Tells You",
    "Why {Kw} Are More Important Than You Think",
    "{n} Simple {Kw} for {Who} in 2024",
)

INTRO = (
    "Are you looking for the best {kw}? If so, you have come to the right place.",
    "In this article, we will explore everything you need to know about {kw}.",
    "Whether you are a beginner or an expert, this guide has something for everyone.",
    "These days, more and more people are interested in {kw}, and it is easy to see why.",
    "There are so many options out there that it can be hard to know where to start.",
    "We have done the research so that you do not have to.",
    "Finding the right {kw} can make a huge difference in your life.",
    "Keep reading to find out more about {kw} and how they can help you.",
    "In today's fast paced world, everyone wants to get the most out of their time and money.",
    "Many {who} have been asking us about {kw}, so we decided to write this guide.",
    "By the end of this post, you will know exactly what to look for.",
    "Let's dive right in and take a closer look at the top picks.",
)

FILLER = (
    "This is one of the most important things to keep in mind.",
    "Many people overlook this, but it can really make a big difference.",
    "It is always a good idea to do your research before making a decision.",
    "Everyone is different, so what works for one person may not work for another.",
    "This may seem obvious, but you would be surprised how many people forget about it.",
    "Experts agree that this is a key factor for success.",
    "Trust us, you will thank yourself later.",
    "There are many benefits to this, and we will cover some of them here.",
    "It does not have to be complicated or expensive.",
    "The important thing is to find what works best for you.",
    "This is a great option for {who}.",
    "You can find plenty of information about this online.",
    "It is easy to get started, even if you have never tried it before.",
    "Of course, there are some pros and cons to consider.",
    "At the end of the day, it all comes down to your personal preferences.",
    "This can help you save time, money and stress in the long run.",
    "Many of our readers say this was a real game changer for them.",
    "Do not underestimate the power of this simple step.",
    "Keep this in mind and you will be well on your way.",
    "The possibilities are endless, so feel free to get creative.",
    "Not everyone knows this, but it is actually very important.",
    "We highly recommend giving this a try if you have not already.",
    "You will be amazed at the results once you get the hang of it.",
    "It is a simple way to make things easier for yourself.",
    "Some people love it and some people do not, and that is perfectly fine.",
    "There is no right or wrong answer here, only what suits your needs.",
    "Take your time and do not rush into anything.",
    "Small changes can lead to big results over time.",
    "This is something that a lot of {who} tend to forget.",
    "If you are serious about {kw}, this is a must.",
    "Believe it or not, this one is often overlooked.",
    "With a little planning, anyone can do this.",
    "It is definitely worth considering, especially if you are on a budget.",
    "The best part is that it is suitable for all ages and skill levels.",
    "As the saying goes, better safe than sorry.",
    "You really cannot go wrong with this one.",
    "Quality matters, so do not just go for the cheapest option.",
    "This tip alone can take your experience to the next level.",
    "It might take some trial and error, but it will be worth it.",
    "There are many different options available on the market today.",
    "Make sure to read the reviews before you decide.",
    "Consistency is the key to getting the results you want.",
    "Everyone should know about this, in our opinion.",
    "It is a popular choice for a reason.",
    "Remember, the journey is just as important as the destination.",
    "When in doubt, it is always best to ask a professional.",
)

FIRST_LEADS = (
    "{item} is one of the first things you should think about.",
    "{item} is a great place to start.",
    "First up on our list is {item_l}.",
)
LAST_LEADS = (
    "Last but not least, there is {item_l}.",
    "Finally, we have {item_l}.",
    "We saved {item_l} for the end of our list.",
)
ITEM_LEADS = (
    "When it comes to {kw}, {item_l} is very important.",
    "Next on our list is {item_l}.",
    "Let's talk about {item_l}.",
    "{item} is another key point that you should not ignore.",
    "You cannot talk about {kw} without mentioning {item_l}.",
    "{item} is something that many people do not think about enough.",
    "Another thing to consider is {item_l}.",
    "{item} can make or break your experience.",
    "Our next tip is all about {item_l}.",
    "Moving on, let's look at {item_l}.",
    "{item} deserves a spot on this list too.",
    "Do not forget about {item_l}.",
)

FAQ = (
    (
        "Are {kw} worth it?",
        "Yes, for most people they are definitely worth it, but it depends on your needs.",
    ),
    (
        "How do I choose the right option?",
        "It depends on your budget, your goals and your personal preferences.",
    ),
    ("Is it expensive?", "Not necessarily, as there are options available for every budget."),
    ("Can beginners do this?", "Absolutely, anyone can get started with a little bit of patience."),
    (
        "What is the best choice in 2024?",
        "The best choice is the one that fits your lifestyle and your needs.",
    ),
    (
        "How long does it take to see results?",
        "It varies from person to person, so be patient and stay consistent.",
    ),
)

CONCLUSION = (
    "In conclusion, {kw} are very important and can make a real difference.",
    "We hope this article has helped you learn more about {kw}.",
    "As you can see, there are many things to consider.",
    "No matter what you choose, the most important thing is to enjoy the process.",
    "With these tips in mind, you are ready to get started.",
    "Now that you know the basics, it is time to take action.",
    "Good luck, and remember to have fun along the way.",
    "We are confident that this guide will help you make the right decision.",
)

CALLS = (
    "Do not forget to share this article with your friends and family!",
    "Let us know in the comments which tip was your favorite!",
    "Subscribe to our newsletter for more great tips like these.",
    "Click the link below to check the latest prices and deals.",
    "Bookmark this page so you can come back to it later!",
    "Follow us on social media to stay up to date with our latest posts.",
)

DISCLOSURE = (
    "This post may contain affiliate links, which means we may earn a small commission at no extra cost to you.",
    "Disclaimer: we may receive a commission if you buy through the links on this page.",
    "As an affiliate, we earn from qualifying purchases made through links in this article.",
)

HEADINGS = {
    "what": ("What Are {Kw}?", "Why {Kw} Matter", "Why Should You Care About {Kw}?"),
    "faq": ("Frequently Asked Questions", "FAQs"),
    "end": ("Conclusion", "Final Thoughts", "The Bottom Line", "Wrapping Up"),
}


def _title_case(text: str) -> str:
    return " ".join(w if w.isupper() else w[:1].upper() + w[1:] for w in text.split())


def thin_article(rng: random.Random, topic: str) -> Article:
    """A filler listicle on `topic`, hosted by a content farm (`Article.home`)."""
    theme = rng.choice(THEMES[topic])
    kw = theme.kw
    items = rng.sample(theme.items, rng.randint(6, 9))
    slots = {
        "kw": kw,
        "Kw": _title_case(kw),
        "who": theme.who,
        "Who": _title_case(theme.who),
        "n": str(len(items)),
    }
    pool = SentencePool(
        rng,
        {
            "intro": INTRO,
            "filler": FILLER,
            "lead": ITEM_LEADS,
            "end": CONCLUSION,
            "call": CALLS,
            **{f"h_{k}": v for k, v in HEADINGS.items()},
        },
    )
    blocks: list[Block] = []
    if rng.random() < 0.6:
        blocks.append(Block("p", rng.choice(DISCLOSURE)))
    blocks += paragraphs(rng, pool.take("intro", rng.randint(4, 6)), slots, (2, 3))
    if rng.random() < 0.5:
        blocks.append(Block("h2", fill(pool.take("h_what", 1)[0], slots, rng)))
        blocks += paragraphs(rng, pool.take("filler", 3), slots, (3, 3))
    for number, item in enumerate(items, start=1):
        blocks.append(Block("h2", f"{number}. {item}"))
        item_slots = {**slots, "item": item, "item_l": item[:1].lower() + item[1:]}
        if number == 1:
            lead = rng.choice(FIRST_LEADS)
        elif number == len(items):
            lead = rng.choice(LAST_LEADS)
        else:
            lead = pool.take("lead", 1)[0]
        sentences = [lead, *pool.take("filler", rng.randint(2, 3))]
        blocks.append(Block("p", " ".join(fill(s, item_slots, rng) for s in sentences)))
    if rng.random() < 0.5:
        blocks.append(Block("h2", pool.take("h_faq", 1)[0]))
        for question, answer in rng.sample(FAQ, rng.randint(2, 3)):
            blocks.append(Block("h2", fill(question, slots, rng)))
            blocks.append(Block("p", fill(answer, slots, rng)))
    blocks.append(Block("h2", pool.take("h_end", 1)[0]))
    blocks += paragraphs(rng, pool.take("end", rng.randint(3, 4)) + pool.take("call", 2), slots, (2, 3))
    title = fill(rng.choice(TITLES), slots, rng)
    site = rng.choice(farms_for(topic))
    byline = rng.choice(("Admin", "Editorial Team", "Staff Writer", person(rng)))
    return Article(
        title,
        "en",
        topic,
        tuple(blocks),
        byline=byline,
        dateline=dateline(rng),
        description=f"Everything you need to know about {kw} in 2024.",
        home=site.host,
    )
