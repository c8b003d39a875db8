"""English recipe pages: a personal introduction, an ingredient list, numbered steps and cooking notes."""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, Block, SentencePool, fill, paragraphs, person

DISHES = (
    {
        "dish": "lemon and thyme roast chicken",
        "main": "chicken",
        "method": "roasting",
        "time": "90 minutes",
        "ingredients": (
            "1 whole chicken, about 1.6 kg",
            "2 unwaxed lemons",
            "a small bunch of fresh thyme",
            "6 cloves of garlic, unpeeled",
            "3 tablespoons olive oil",
            "500 g small potatoes",
            "1 teaspoon flaky sea salt",
        ),
    },
    {
        "dish": "smoky black bean chili",
        "main": "black beans",
        "method": "simmering",
        "time": "one hour",
        "ingredients": (
            "2 tins of black beans, drained",
            "1 large onion, finely chopped",
            "2 red peppers",
            "1 tablespoon smoked paprika",
            "1 teaspoon ground cumin",
            "1 tin of chopped tomatoes",
            "a handful of fresh coriander",
        ),
    },
    {
        "dish": "brown butter banana bread",
        "main": "bananas",
        "method": "baking",
        "time": "75 minutes",
        "ingredients": (
            "3 very ripe bananas",
            "115 g unsalted butter",
            "150 g light brown sugar",
            "2 eggs",
            "250 g plain flour",
            "1 teaspoon bicarbonate of soda",
            "a pinch of salt",
        ),
    },
    {
        "dish": "mushroom and leek risotto",
        "main": "mushrooms",
        "method": "stirring",
        "time": "45 minutes",
        "ingredients": (
            "300 g arborio rice",
            "2 leeks, sliced",
            "250 g chestnut mushrooms",
            "1.2 litres hot vegetable stock",
            "a glass of dry white wine",
            "50 g grated parmesan",
            "a knob of butter",
        ),
    },
    {
        "dish": "crispy sesame tofu with greens",
        "main": "tofu",
        "method": "pan frying",
        "time": "35 minutes",
        "ingredients": (
            "400 g firm tofu, pressed",
            "2 tablespoons cornflour",
            "1 tablespoon toasted sesame oil",
            "3 tablespoons soy sauce",
            "1 tablespoon honey",
            "2 heads of pak choi",
            "1 tablespoon sesame seeds",
        ),
    },
    {
        "dish": "slow cooked beef and ale stew",
        "main": "beef",
        "method": "braising",
        "time": "three hours",
        "ingredients": (
            "1 kg braising beef, diced",
            "2 tablespoons plain flour",
            "3 carrots, cut into chunks",
            "2 onions, roughly chopped",
            "500 ml dark ale",
            "2 bay leaves",
            "300 ml beef stock",
        ),
    },
    {
        "dish": "spiced lentil soup",
        "main": "red lentils",
        "method": "simmering",
        "time": "40 minutes",
        "ingredients": (
            "250 g red lentils, rinsed",
            "1 onion, diced",
            "2 carrots, grated",
            "1 teaspoon ground turmeric",
            "1 teaspoon cumin seeds",
            "1 litre vegetable stock",
            "juice of half a lemon",
        ),
    },
    {
        "dish": "apple and blackberry crumble",
        "main": "apples",
        "method": "baking",
        "time": "50 minutes",
        "ingredients": (
            "4 cooking apples, peeled and sliced",
            "200 g blackberries",
            "75 g caster sugar",
            "150 g plain flour",
            "100 g cold butter, cubed",
            "50 g rolled oats",
            "half a teaspoon of cinnamon",
        ),
    },
    {
        "dish": "garlic prawn linguine",
        "main": "prawns",
        "method": "sauteing",
        "time": "25 minutes",
        "ingredients": (
            "300 g linguine",
            "250 g raw king prawns",
            "4 cloves of garlic, sliced",
            "1 red chilli, finely chopped",
            "a splash of white wine",
            "zest of 1 lemon",
            "a handful of flat leaf parsley",
        ),
    },
)

STORY = (
    "This {dish} has been on repeat in our kitchen for as long as I can remember.",
    "I first made this {dish} on a rainy {weekday} when the cupboards were almost bare.",
    "Every family has a dish that signals comfort, and for us it has always been {dish}.",
    "My grandmother never wrote this recipe down, so it took me several attempts to get it right.",
    "There is something deeply satisfying about a meal that mostly looks after itself.",
    "Friends ask me for this recipe more than any other, so it seemed about time to share it properly.",
    "The smell alone is enough to bring everyone into the kitchen long before dinner is ready.",
    "It is the kind of recipe that rewards a little patience without asking for any special skills.",
    "I have tweaked the quantities over the years, and this version is the one I keep coming back to.",
    "We usually make a double batch, because the leftovers are even better the next day.",
    "Last winter I cooked this {dish} for a crowd of twelve, and the pot was scraped clean within an hour.",
    "Nothing about this recipe is fancy, which is exactly why it earns a place in my weekly rotation.",
    "A neighbour once brought round a version of this {dish}, and I have been adapting it ever since.",
    "The first time I tried it the result was a disaster, but the second attempt taught me a lot.",
    "On busy evenings I want food that tastes generous without keeping me at the stove all night.",
    "My partner claims to dislike {main}, yet somehow always asks for another helping of this.",
    "This started as a way to use up odds and ends, and it slowly became a favourite in its own right.",
    "You will find versions of this dish all over the world, each with its own local twist.",
)

METHOD_NOTES = (
    "The secret to good {method} is to resist the urge to rush the early stages.",
    "Give the {main} plenty of room in the pan, otherwise it will steam instead of browning.",
    "Taste as you go and adjust the seasoning right at the end, when the flavours have settled.",
    "A heavy pan holds its heat far better than a thin one and makes the whole process more forgiving.",
    "If you are short of time, most of the preparation can be done the evening before.",
    "Fresh herbs make a real difference here, although dried ones will do in the middle of winter.",
    "Good quality {main} is worth seeking out, since it carries most of the flavour of the dish.",
    "Do not worry if the mixture looks a little rough at this point; it comes together later.",
    "Let everything rest for a few minutes before serving so the texture can settle.",
    "Keep the heat moderate, because a scorched base will spoil the whole pot.",
    "A squeeze of lemon just before serving lifts the flavours and balances the richness.",
    "Children love helping with this part, and it is hard for them to get it wrong.",
    "Salt early and lightly rather than all at once, so the seasoning works its way through.",
    "An oven thermometer is a cheap investment, since many ovens run hotter or cooler than the dial says.",
    "Resting the finished {dish} briefly makes it far easier to portion neatly.",
    "I like to cut everything into pieces of a similar size so that they cook evenly.",
    "Cheaper cuts and tinned ingredients work perfectly well here, so there is no need to splash out.",
    "When in doubt, cook it a little longer at a lower temperature rather than turning up the heat.",
    "A wooden spoon is gentler on the pan and makes it easier to scrape up the tasty bits at the bottom.",
    "The flavour deepens noticeably if you leave the dish to sit for half an hour before serving.",
)

# Steps in cooking order; a page keeps a subset in this order and rewords each step from its variants.
STEPS = (
    (
        "Heat the oven to {temp} degrees and line a large tray or tin with baking paper.",
        "Preheat the oven to {temp} degrees and lightly grease your dish.",
    ),
    (
        "Prepare all of the ingredients before you start, so nothing burns while you are chopping.",
        "Weigh and chop everything first; it makes the cooking itself calm and quick.",
        "Get all the chopping done before any heat goes on, and keep the pieces in separate bowls.",
    ),
    (
        "Warm the oil in a wide pan over a medium heat until it shimmers.",
        "Set a large heavy pan over a medium flame and add a generous splash of oil.",
        "Melt a little butter with the oil in your biggest pan until it starts to foam.",
    ),
    (
        "Add the {main} and cook for {minutes} minutes, turning occasionally, until lightly coloured.",
        "Brown the {main} in batches, taking care not to crowd the pan.",
        "Tip in the {main} and let it sizzle undisturbed for a few minutes before stirring.",
    ),
    (
        "Add the onion and garlic and soften them gently without letting them catch.",
        "Stir through the aromatics and cook until the kitchen smells wonderful.",
    ),
    (
        "Stir in the remaining ingredients and bring everything to a gentle bubble.",
        "Add everything else, scrape the bottom of the pan and bring it up to a simmer.",
        "Pour in the liquid a little at a time, stirring well after each addition.",
    ),
    (
        "Lower the heat, cover loosely and leave to cook for {minutes} minutes.",
        "Transfer to the oven and cook for {minutes} minutes, checking once halfway through.",
        "Turn the heat right down and let it tick away for {minutes} minutes, stirring now and then.",
    ),
    (
        "Check the seasoning, adding a little more salt or pepper if it needs it.",
        "Taste and adjust with salt, pepper or a squeeze of lemon.",
    ),
    (
        "Take the pan off the heat and leave it to stand while you set the table.",
        "Let it rest for {rest} minutes so the flavours can come together.",
    ),
    (
        "Scatter over the herbs and serve straight away with crusty bread or a green salad.",
        "Serve warm, with plenty of bread for mopping up the juices.",
        "Bring it to the table in the pan and let everyone help themselves.",
    ),
)

STORAGE = (
    "Leftovers keep well in an airtight container in the fridge for up to three days.",
    "The dish freezes well for about a month; thaw it overnight in the fridge before reheating.",
    "Reheat gently and add a splash of water if the texture has become too thick.",
    "You can halve the quantities easily, although cooking times will be slightly shorter.",
    "For a vegetarian version, swap the {main} for roasted squash or chickpeas.",
    "If you try this recipe, I would love to hear how it turned out and what you changed.",
)

COMMENTS = (
    "Made this last night and my kids asked for seconds. Definitely a keeper.",
    "Can I use frozen instead of fresh? Thanks for all your lovely recipes.",
    "I added a little chilli and it was perfect. Thank you!",
    "Mine took a bit longer in the oven but it turned out beautifully.",
)


def article(rng: random.Random) -> Article:
    """A recipe page with a personal introduction, ingredients, method and storage notes."""
    dish = rng.choice(DISHES)
    slots = {
        "dish": dish["dish"],
        "main": dish["main"],
        "method": dish["method"],
        "weekday": ("Sunday", "Tuesday", "Friday"),
        "minutes": lambda r: str(r.randint(15, 45)),
        "temp": ("180", "190", "200", "220"),
        "rest": ("five", "ten", "fifteen"),
    }
    pool = SentencePool(rng, {"story": STORY, "notes": METHOD_NOTES, "steps": STEPS, "storage": STORAGE})
    title = rng.choice(("The best {}", "Easy {}", "{} for a crowd", "My favourite {}", "Weeknight {}"))
    title = title.format(dish["dish"])
    title = title[:1].upper() + title[1:]
    blocks: list[Block] = paragraphs(rng, pool.take("story", rng.randint(4, 7)), slots, (2, 3))
    blocks.append(Block("h2", "Why this recipe works"))
    blocks += paragraphs(rng, pool.take("notes", rng.randint(4, 8)), slots, (2, 3))
    ingredients = list(dish["ingredients"])
    rng.shuffle(ingredients)
    blocks.append(Block("h2", f"Ingredients (serves {rng.randint(2, 6)})"))
    blocks.append(Block("ul", items=tuple(ingredients[: rng.randint(4, 6)])))
    blocks.append(Block("h2", "Method"))
    steps = [rng.choice(variants) for variants in STEPS if rng.random() < 0.75]
    blocks.append(Block("ol", items=tuple(fill(step, slots, rng) for step in steps)))
    blocks.append(Block("h2", "Tips and storage"))
    blocks += paragraphs(rng, pool.take("notes", 2) + pool.take("storage", rng.randint(2, 4)), slots, (2, 3))
    if rng.random() < 0.4:
        rows = (
            ("Per serving", "Amount"),
            ("Energy", f"{rng.randint(280, 690)} kcal"),
            ("Protein", f"{rng.randint(6, 42)} g"),
            ("Carbohydrate", f"{rng.randint(12, 80)} g"),
            ("Fat", f"{rng.randint(4, 35)} g"),
        )
        blocks.append(Block("table", "Nutrition (approximate)", rows=rows))
    comments = tuple((person(rng), c) for c in rng.sample(COMMENTS, rng.randint(0, 4)))
    return Article(
        title,
        "en",
        "cooking",
        tuple(blocks),
        byline=person(rng),
        description=f"A reliable recipe for {dish['dish']}, ready in {dish['time']}.",
        comments=comments,
    )
