"""English finance pages: personal budgeting, saving and debt, markets explained, and small-business money.

Pages read like the money sections of newspapers, credit-union guides and personal finance blogs: one
subject per page, a worked example with numbers, the reasoning behind the rule of thumb and its caveats.
Amounts, rates and the people in the examples are drawn per page, so two pages on the same subject share
ideas but not their wording; the vocabulary (interest, budgets, invoices, index funds) gives a domain
classifier a clear signal.
"""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, Block, SentencePool, dateline, paragraphs, person

SUBJECTS = (
    {
        "group": "personal",
        "s": "an emergency fund",
        "goal": "three to six months of essential spending",
        "risk": "an unexpected bill landing on a credit card",
        "tool": "an easy access savings account",
        "title": "How to build an emergency fund on an ordinary income",
    },
    {
        "group": "personal",
        "s": "a monthly budget",
        "goal": "knowing where every pound goes before the month starts",
        "risk": "running out of money in the last week of the month",
        "tool": "a simple spreadsheet with one row per category",
        "title": "The 50/30/20 budget, and when to break the rule",
    },
    {
        "group": "personal",
        "s": "paying off credit card debt",
        "goal": "clearing the most expensive balance first",
        "risk": "paying only the minimum for years",
        "tool": "a balance transfer card with a long interest free period",
        "title": "Getting out of credit card debt: a step by step plan",
    },
    {
        "group": "personal",
        "s": "saving for retirement",
        "goal": "a pension pot that replaces around two thirds of your working income",
        "risk": "leaving contributions until the last decade of work",
        "tool": "a workplace pension with matching employer contributions",
        "title": "Retirement saving in your thirties: small steps, big difference",
    },
    {
        "group": "markets",
        "s": "index funds",
        "goal": "owning a small slice of hundreds of companies at a low cost",
        "risk": "selling in a panic when prices fall",
        "tool": "a low cost global tracker fund",
        "title": "Index funds explained: why boring investing usually wins",
    },
    {
        "group": "markets",
        "s": "interest rates",
        "goal": "understanding how a rate change reaches your mortgage and savings",
        "risk": "a fixed rate deal ending just as rates rise",
        "tool": "a mortgage overpayment calculator",
        "title": "What a central bank rate rise means for your mortgage",
    },
    {
        "group": "markets",
        "s": "inflation",
        "goal": "protecting the buying power of your savings",
        "risk": "cash losing value quietly in a low interest account",
        "tool": "a savings account that pays more than the rate of inflation",
        "title": "Inflation explained: why your shopping costs more every year",
    },
    {
        "group": "markets",
        "s": "bonds",
        "goal": "a steadier part of a portfolio that pays regular interest",
        "risk": "bond prices falling when interest rates climb",
        "tool": "a short dated government bond fund",
        "title": "Bonds for beginners: lending money to governments and companies",
    },
    {
        "group": "business",
        "s": "cash flow in a small business",
        "goal": "enough money in the bank to pay suppliers and staff on time",
        "risk": "a profitable business running out of cash",
        "tool": "a thirteen week cash flow forecast",
        "title": "Cash flow for small businesses: profit is not the same as money",
    },
    {
        "group": "business",
        "s": "pricing your services as a freelancer",
        "goal": "a day rate that covers holidays, sick days and tax",
        "risk": "charging an hourly rate copied from a salary",
        "tool": "a simple break even calculation",
        "title": "How to set your freelance day rate without guessing",
    },
    {
        "group": "business",
        "s": "late invoices",
        "goal": "getting paid within thirty days",
        "risk": "chasing the same customer for three months",
        "tool": "clear payment terms written on every invoice",
        "title": "Late payments: how small firms can get paid on time",
    },
    {
        "group": "business",
        "s": "setting aside money for tax",
        "goal": "a separate account that holds the tax bill before it is due",
        "risk": "a large tax bill arriving with nothing saved",
        "tool": "a second business account that receives a fixed share of every payment",
        "title": "Self-employed? How to never be surprised by a tax bill again",
    },
)

INTRO = (
    "Money advice is often either too vague to use or too complicated to follow, so this guide aims for neither.",
    "Few subjects cause as much quiet worry as {s}, yet the basic ideas fit on a single page.",
    "The aim here is simple: {goal}.",
    "Most people learn about {s} the hard way, usually after {risk}.",
    "This article walks through {s} with a worked example and the common mistakes to avoid.",
    "You do not need a finance degree to get {s} right, just a clear plan and a little patience.",
    "Over the past year our readers have sent more questions about {s} than about anything else.",
)

PERSONAL = (
    "Start by writing down your take home pay and every regular payment that leaves your account.",
    "Bank statements from the last three months give a far more honest picture than memory.",
    "Essential costs such as rent, energy, food and transport come first, before anything else is planned.",
    "Automating a transfer on payday means the saving happens before there is a chance to spend it.",
    "The biggest danger is {risk}, which can undo months of careful progress.",
    "A practical tool is {tool}, which keeps the money separate from everyday spending.",
    "Interest on unpaid card balances often runs above twenty percent a year, far more than savings earn.",
    "Paying more than the minimum each month shortens the life of a debt by years, not months.",
    "Small regular amounts add up, and compound interest rewards those who start early.",
    "Subscriptions that renew automatically are easy to forget and worth reviewing every few months.",
    "Couples often find it easier to agree on shared goals before they argue about individual purchases.",
    "A budget that is too strict tends to fail, so leave room for small treats.",
    "Irregular costs such as car repairs, birthdays and annual insurance are best spread across the year.",
    "If money is already tight, free debt advice charities can negotiate with lenders on your behalf.",
    "Checking your credit file once a year helps you spot mistakes before you apply for a loan.",
    "Cheaper energy, phone and insurance deals are usually available to anyone willing to switch at renewal.",
    "Keeping a small cash float for the week makes overspending visible in a way that card payments do not.",
    "Buy now, pay later offers feel painless at the till but behave like any other loan.",
    "Once the most expensive debt is gone, the money that was repaying it can go straight into savings.",
    "A pay rise is the best moment to increase savings, before the extra money is absorbed by spending.",
)

MARKETS = (
    "Prices in financial markets move every second, but the forces behind them change slowly.",
    "A central bank raises interest rates to cool spending when prices are rising too quickly.",
    "When rates go up, borrowing becomes more expensive and saving becomes more rewarding.",
    "The main risk for ordinary investors is {risk}.",
    "A practical way to put this into action is {tool}.",
    "Over long periods, shares have tended to grow faster than inflation, though with sharp falls along the way.",
    "Diversification means spreading money across many companies and countries so that no single failure hurts too much.",
    "Fees look small as a percentage, but over twenty years a difference of one percent can cost thousands.",
    "Nobody can reliably predict the next move in the market, including the professionals on television.",
    "Investing only makes sense for money you will not need for at least five years.",
    "Inflation measures how fast the price of a typical basket of goods rises over a year.",
    "Bond prices and interest rates move in opposite directions, which surprises many new investors.",
    "The value of an investment can fall as well as rise, and past returns are no guarantee of future ones.",
    "A regular monthly investment smooths out the ups and downs, because it buys more units when prices are low.",
    "Tax free accounts can make a large difference to the final result, so use the allowance before anything else.",
    "Share prices reflect what investors expect companies to earn in the future, not only what they earn today.",
    "Mortgage rates follow expectations about the central bank, so they often move before any official decision.",
    "Cash held for emergencies belongs in a savings account, not in the stock market.",
    "A fund's factsheet lists its largest holdings, its costs and how it has performed against its benchmark.",
    "Rebalancing once a year keeps the mix of shares and bonds close to the level of risk you chose.",
)

BUSINESS = (
    "A business can be profitable on paper and still fail because the cash arrives too late.",
    "The safest habit is to keep {tool} and to update it every week.",
    "The most common trap is {risk}.",
    "Send invoices on the day the work is finished, not at the end of the month.",
    "Payment terms should be agreed in writing before the work starts, including what happens when a bill is late.",
    "Many small firms keep a buffer of at least two months of fixed costs in the bank.",
    "Suppliers are often willing to agree longer payment terms with customers who have always paid on time.",
    "Pricing should cover the owner's own time, which new business owners often forget to count.",
    "A separate business bank account makes bookkeeping and tax returns far simpler.",
    "Accounting software can send automatic reminders, which saves awkward phone calls.",
    "Seasonal businesses need to plan for the quiet months while the busy months are still paying well.",
    "An accountant usually costs less than the mistakes they prevent, especially in the first year.",
    "Growing too quickly can strain cash flow, because stock and wages must be paid before customers pay.",
    "Keeping receipts in one place all year turns the tax return into an afternoon rather than a week.",
    "Reviewing prices once a year is normal, and most customers accept a modest, well explained rise.",
    "Asking for a deposit on large orders protects a small firm if the customer changes their mind.",
    "Stock that sits on shelves for months is cash that cannot be used for anything else.",
    "Offering a small discount for early payment can bring money in weeks sooner.",
    "A business overdraft is useful for short gaps but expensive as a permanent source of funding.",
    "Knowing which customers bring in most of the profit helps decide where to spend time.",
)

GENERAL = (
    "The right answer depends on your income, your commitments and how much uncertainty you can live with.",
    "It is easier to stick to a plan that you have written down and shared with someone else.",
    "Good habits matter more than clever products, and they cost nothing to start.",
    "Comparison websites are useful, but they do not always show every provider on the market.",
    "Read the small print for fees, penalties and notice periods before you commit.",
    "A short review every few months catches problems while they are still small.",
    "Money worries affect sleep, work and relationships, so it is worth dealing with them early.",
    "The first step is usually the hardest, and the rest follows more easily once a routine is in place.",
    "Be wary of anyone who promises high returns with no risk, because such offers do not exist.",
    "Employers, banks and local charities often provide free tools that few people know about.",
    "Mistakes are normal, and the important thing is to notice them and adjust the plan.",
    "Talking openly about money with a partner or family member removes a lot of the stress.",
)

CAVEATS = (
    "None of this is personal financial advice, and your own situation may call for a different approach.",
    "Rules of thumb are a starting point, not a law, and they should bend to fit real life.",
    "Tax rules and allowances change often, so check the current figures before acting.",
    "If you are unsure, an independent adviser who charges a fixed fee can be worth the cost.",
    "The numbers in our example are rounded to keep the arithmetic simple.",
)

QUOTES = (
    '"The people who do best are rarely the cleverest, just the most consistent," says {expert}, a financial planner.',
    '"Most of my clients already know what to do; they need a system that makes it automatic," explains {expert}.',
    '"Write the plan down, because a plan in your head changes every time you feel nervous," says {expert}.',
    '"Nobody regrets having started earlier," says {expert}, who runs a small accountancy practice.',
)

CHECKLIST = (
    "Write down what you earn and what you spend in a typical month.",
    "Choose one goal and give it a number and a date.",
    "Set up an automatic transfer on the day you are paid.",
    "Review the plan every three months and adjust it.",
    "Keep an emergency buffer separate from long term savings.",
    "Check fees and interest rates before signing anything.",
    "Ask for help early if repayments become difficult.",
)

EXPLAIN = {"personal": PERSONAL, "markets": MARKETS, "business": BUSINESS}

HEADINGS = {
    "explain": (
        "The basics",
        "How it works",
        "A worked example",
        "Common mistakes",
        "Why it matters",
        "What to do next",
    ),
    "list": ("A quick checklist", "Steps to get started", "Key takeaways"),
}


def _example_table(rng: random.Random, group: str) -> Block:
    """A small worked example with numbers drawn per page, the way money guides show their arithmetic.

    Tables stay narrow (a label column and one or two figures): every cell separator and bare number counts
    as a non-alphabetic word for the Gopher rules, and a wide grid of figures would sink a short page.
    """
    if group == "business":
        base = rng.randrange(6000, 30000, 500)
        rows = [("Month", "Money in", "Money out")]
        for month in ("January", "February", "March"):
            money_in = base + rng.randrange(-2000, 2000, 100)
            rows.append((month, f"{money_in:,}", f"{base + rng.randrange(-1500, 2500, 100):,}"))
        return Block("table", "Example cash flow for one quarter", rows=tuple(rows))
    if group == "markets":
        monthly = rng.randrange(100, 500, 25)
        rate = rng.choice((3, 4, 5, 6, 7))
        rows = [("Saving period", "Approximate value")]
        for words, years in (("After five years", 5), ("After ten years", 10), ("After twenty years", 20)):
            value = sum(monthly * 12 * (1 + rate / 100) ** y for y in range(years))
            rows.append((words, f"{round(value, -2):,.0f}"))
        return Block("table", f"Saving {monthly} a month with {rate}% yearly growth", rows=tuple(rows))
    pay = rng.randrange(1600, 4200, 50)
    rows = (
        ("Category", "Monthly amount"),
        ("Needs such as rent and food", f"{pay // 2:,}"),
        ("Wants such as meals out", f"{pay * 3 // 10:,}"),
        ("Savings and debt repayments", f"{pay // 5:,}"),
    )
    return Block("table", f"A 50/30/20 split of {pay:,} take home pay", rows=rows)


def article(rng: random.Random) -> Article:
    """A money guide, explainer or small-business column on one finance subject."""
    subject = rng.choice(SUBJECTS)
    slots = {k: v for k, v in subject.items() if k not in ("title", "group")}
    slots["expert"] = person(rng)
    group = subject["group"]
    pool = SentencePool(
        rng,
        {
            "intro": INTRO,
            "explain": EXPLAIN[group],
            "other": GENERAL,
            "caveat": CAVEATS,
            "quote": QUOTES,
            "list": CHECKLIST,
            **{f"h_{k}": v for k, v in HEADINGS.items()},
        },
    )
    blocks: list[Block] = paragraphs(rng, pool.take("intro", 2) + pool.take("explain", 2), slots, (2, 4))
    for n in range(rng.randint(2, 3)):
        blocks.append(Block("h2", pool.take("h_explain", 1)[0]))
        chunk = pool.take("explain", rng.randint(2, 4)) + pool.take("other", rng.randint(1, 2))
        if rng.random() < 0.4:
            chunk += pool.take("quote", 1)
        blocks += paragraphs(rng, chunk, slots)
        if n == 0 and rng.random() < 0.5:
            blocks.append(_example_table(rng, group))
    if rng.random() < 0.6:
        blocks.append(Block("h2", pool.take("h_list", 1)[0]))
        blocks.append(
            Block("ol" if rng.random() < 0.5 else "ul", items=tuple(pool.take("list", rng.randint(3, 5))))
        )
    blocks += paragraphs(rng, pool.take("explain", 1) + pool.take("caveat", rng.randint(1, 2)), slots, (2, 3))
    return Article(
        subject["title"],
        "en",
        "finance",
        tuple(blocks),
        byline=person(rng),
        dateline=dateline(rng),
        description=f"A plain guide to {subject['s']}.",
    )
