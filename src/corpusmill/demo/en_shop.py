"""English e-commerce product pages: description, feature list, specification table and reviews."""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, Block, SentencePool, paragraphs, person

PRODUCTS = {
    "www.northwindoutfitters.com": (
        {
            "name": "Ridgeline 2 Person Tent",
            "thing": "tent",
            "material": "ripstop nylon",
            "use": "backpacking trips",
            "specs": (("Weight", "1.9 kg"), ("Packed size", "45 x 15 cm"), ("Poles", "Aluminium")),
        },
        {
            "name": "Summit Down Jacket",
            "thing": "jacket",
            "material": "recycled down",
            "use": "cold mountain days",
            "specs": (("Fill power", "700"), ("Weight", "380 g"), ("Fit", "Regular")),
        },
        {
            "name": "Trailhead 38 Litre Pack",
            "thing": "pack",
            "material": "waxed canvas",
            "use": "long day hikes",
            "specs": (("Volume", "38 litres"), ("Weight", "1.1 kg"), ("Back length", "Adjustable")),
        },
        {
            "name": "Stormfront Waterproof Shell",
            "thing": "shell",
            "material": "three layer membrane",
            "use": "wet and windy weather",
            "specs": (("Hydrostatic head", "20,000 mm"), ("Weight", "420 g")),
        },
    ),
    "shop.kettleandcrumb.com": (
        {
            "name": "Cast Iron Dutch Oven, 5 Litre",
            "thing": "pot",
            "material": "enamelled cast iron",
            "use": "slow braises and crusty bread",
            "specs": (("Capacity", "5 litres"), ("Weight", "5.6 kg")),
        },
        {
            "name": "Carbon Steel Chef's Knife, 20 cm",
            "thing": "knife",
            "material": "carbon steel",
            "use": "everyday chopping and slicing",
            "specs": (("Blade length", "20 cm"), ("Handle", "Walnut")),
        },
        {
            "name": "Stoneware Mixing Bowl Set",
            "thing": "bowl set",
            "material": "glazed stoneware",
            "use": "baking and serving",
            "specs": (("Pieces", "3"), ("Dishwasher safe", "Yes")),
        },
        {
            "name": "Stovetop Espresso Maker",
            "thing": "coffee maker",
            "material": "brushed aluminium",
            "use": "strong morning coffee",
            "specs": (("Cups", "6"), ("Hob types", "Gas and electric")),
        },
    ),
    "www.brightdeskstore.com": (
        {
            "name": "Oakline Standing Desk",
            "thing": "desk",
            "material": "solid oak veneer",
            "use": "long working days",
            "specs": (("Height range", "65 to 128 cm"), ("Motors", "Dual")),
        },
        {
            "name": "Aria Ergonomic Office Chair",
            "thing": "chair",
            "material": "breathable mesh",
            "use": "hours of focused work",
            "specs": (("Seat height", "44 to 54 cm"), ("Max load", "135 kg")),
        },
        {
            "name": "Lumen Architect Desk Lamp",
            "thing": "lamp",
            "material": "powder coated steel",
            "use": "reading and detailed work",
            "specs": (("Brightness", "800 lumens"), ("Colour range", "Warm to cool")),
        },
    ),
}

PITCH = (
    "The {name} is built from {material} and designed for {use}.",
    "We designed this {thing} after listening to hundreds of customers describe what they actually needed.",
    "Every detail of the {name} has been tested by our own staff over many months of real use.",
    "It strikes a careful balance between durability, weight and price.",
    "If you want a {thing} that will last for years rather than a single season, this is a good "
    "place to start.",
    "The clean design looks just as good at home as it does out in the world.",
    "Small touches, such as reinforced seams and replaceable parts, make a big difference over time.",
    "We source {material} from suppliers who publish independent reports on working conditions.",
    "Unlike cheaper alternatives, this {thing} can be repaired rather than thrown away when "
    "something wears out.",
    "It arrives ready to use, with no complicated assembly and very little packaging.",
    "Many of our customers tell us it is the {thing} they reach for first.",
    "The finish is treated to resist stains and scratches, so everyday marks wipe away easily.",
    "Our design team spent two years refining the proportions before we were happy with the result.",
    "You will notice the difference the first time you pick it up: it feels reassuringly well made.",
    "We deliberately kept the feature list short and focused on the things that matter every day.",
    "The {name} replaces an older model that many customers still use after a decade.",
    "Independent testers praised its comfort and its sensible price in a recent group review.",
    "Each one is inspected by hand before it leaves our warehouse.",
    "It is available in several colours, all of which use the same hard wearing {material}.",
    "Should anything go wrong, our repair service will usually have it back with you within a fortnight.",
    "There are no gimmicks here, just good materials put together with care.",
    "First time buyers and experienced users alike will appreciate how simple it is to live with.",
)

CARE = (
    "Clean with warm water and a soft cloth, and avoid harsh detergents.",
    "Store it somewhere dry and out of direct sunlight when it is not in use.",
    "Check the fittings every few months and tighten anything that has worked loose.",
    "Replacement parts are available from our customer service team for at least ten years.",
    "Let it dry completely before putting it away, especially after wet weather.",
    "A light treatment once or twice a year will keep the surface looking new.",
    "Avoid leaving it near radiators or open fires, since intense heat can damage the finish.",
    "Small scuffs can usually be buffed out with a dry cloth and a little patience.",
    "Follow the printed care card in the box, which covers the most common questions.",
    "If a part breaks, contact us before attempting a repair yourself so the guarantee stays valid.",
)

FEATURES = (
    "Built to last, with a two year guarantee as standard",
    "Free delivery on orders over 50 pounds",
    "Thirty day returns, no questions asked",
    "Made with responsibly sourced materials",
    "Designed and tested by our own team",
    "Spare parts available for years to come",
    "Packed in fully recyclable cardboard",
)

REVIEWS = (
    "Really solid quality and it arrived two days earlier than expected.",
    "Does exactly what it says. I would buy it again without hesitation.",
    "Slightly heavier than I hoped, but the build quality makes up for it.",
    "Customer service sorted out a small problem with my order very quickly.",
    "Lovely finish and it looks even better in person than in the photos.",
)

DELIVERY = (
    "Orders placed before two in the afternoon are usually dispatched the same day.",
    "Standard delivery takes three to five working days, and tracking details are sent by email.",
    "If your {thing} is not quite right, you can return it within thirty days for a full refund.",
    "We ship to most countries in Europe, and international orders normally arrive within ten days.",
    "Large items are delivered by a two person team who will place them in the room of your choice.",
    "Returns are free from most drop off points, and refunds are processed within five working days.",
    "You can also collect your order from one of our stores at no extra cost.",
    "Gift wrapping is available at checkout, and we never include the price in the parcel.",
    "During busy periods delivery may take a day or two longer, and we will let you know by email.",
)


def article(rng: random.Random) -> Article:
    """A product page from one of the shops, with description, features, specs and reviews."""
    host = rng.choice(sorted(PRODUCTS))
    product = rng.choice(PRODUCTS[host])
    slots = {k: v for k, v in product.items() if isinstance(v, str)}
    pool = SentencePool(rng, {"pitch": PITCH, "care": CARE, "delivery": DELIVERY})
    price = f"{rng.randint(19, 640)}.{rng.choice(('00', '50', '95', '99'))}"
    blocks: list[Block] = [Block("p", f"Price: £{price}. In stock and ready to ship.")]
    blocks += paragraphs(rng, pool.take("pitch", rng.randint(6, 10)), slots, (2, 3))
    blocks.append(Block("h2", "Key features"))
    blocks.append(Block("ul", items=tuple(rng.sample(FEATURES, rng.randint(3, 5)))))
    blocks.append(Block("h2", "Specifications"))
    rows = (
        ("Specification", "Detail"),
        *product["specs"],
        ("Material", product["material"]),
        ("Guarantee", f"{rng.choice(('2', '3', '5'))} years"),
    )
    blocks.append(Block("table", rows=rows))
    blocks.append(Block("h2", "Care and maintenance"))
    blocks += paragraphs(rng, pool.take("care", rng.randint(3, 5)), slots, (2, 3))
    blocks.append(Block("h2", "Delivery and returns"))
    blocks += paragraphs(rng, pool.take("delivery", rng.randint(3, 5)), slots, (2, 3))
    comments = tuple((person(rng), c) for c in rng.sample(REVIEWS, rng.randint(1, 4)))
    return Article(
        product["name"],
        "en",
        "shop",
        tuple(blocks),
        home=host,
        description=f"Buy the {product['name']} online.",
        comments=comments,
    )
