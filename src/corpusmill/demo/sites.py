"""The invented web sites of the demo crawl: hosts per topic and language, and how their pages look.

Each topic maps to one domain of the classifier taxonomy (`TOPIC_DOMAINS`), the label a mixture is balanced
over; each topic has several hosts so that per-host statistics and domain balancing have something to work
with. The table is kept as text, one site per entry (host, name, topic, language, layout, cookie banner, IP
address; then its menu), because that is far easier to read and extend than a wall of constructor calls.
"""

from __future__ import annotations

from dataclasses import dataclass

TOPICS = ("news", "science", "cooking", "software", "forum", "shop", "travel", "health", "finance")

# The taxonomy domain (corpusmill.classifiers.taxonomy.DOMAIN_NAMES) each topic's pages belong to. It is the
# one place the demo decides what an annotator should call a page, so truth.jsonl can score the domain
# classifier and the mix stage's domain balance. Two topics may share a domain (cooking and travel are both
# lifestyle), because the taxonomy is coarser than the generators.
TOPIC_DOMAINS: dict[str, str] = {
    "news": "news",
    "science": "science",
    "software": "technology",
    "forum": "social-media",
    "shop": "e-commerce",
    "cooking": "lifestyle",
    "travel": "lifestyle",
    "health": "health",
    "finance": "finance",
}


@dataclass(frozen=True)
class Site:
    """One host of the demo crawl and how its pages are dressed."""

    host: str
    name: str
    topic: str
    lang: str
    layout: str  # "magazine" | "blog" | "docs" | "forum" | "shop"
    nav: tuple[str, ...]
    cookie_banner: bool
    ip: str


# The last hosts only serve junk (spam and placeholder pages) or thin SEO filler (content farms); real
# crawls are full of such sites.
_TABLE = """
www.harborgazette-news.com | The Harbor Gazette | news | en | magazine | banner | 198.51.100.11
    Home, Local, Politics, Business, Sport, Opinion, Weather
news.valleyledger.net | Valley Ledger | news | en | blog | - | 198.51.100.12
    Front Page, Region, Economy, Schools, Obituaries, Events
www.thecountydispatch.org | The County Dispatch | news | en | magazine | banner | 198.51.100.13
    Latest, Council, Courts, Transport, Environment, Letters
www.openlabnotes.org | Open Lab Notes | science | en | blog | - | 198.51.100.21
    Articles, Physics, Biology, Earth, Classroom, About
learn.brightmindsacademy.edu | Bright Minds Academy | science | en | magazine | banner | 198.51.100.22
    Courses, Lessons, Teachers, Parents, Library, Contact
www.sciencedigest-weekly.com | Science Digest Weekly | science | en | magazine | banner | 198.51.100.23
    News, Space, Health, Climate, Technology, Podcasts
www.saltandembers.com | Salt and Embers | cooking | en | blog | banner | 198.51.100.31
    Recipes, Weeknight, Baking, Vegetarian, Techniques, Shop
www.thehungrypantry.net | The Hungry Pantry | cooking | en | blog | banner | 198.51.100.32
    Home, Recipe Index, Meal Plans, Kitchen Tips, About Me
recipes.grandmaskitchen-table.com | Grandma's Kitchen Table | cooking | en | magazine | - | 198.51.100.33
    Breakfast, Lunch, Dinner, Desserts, Holidays, Videos
docs.tidepool-db.io | Tidepool DB Documentation | software | en | docs | - | 198.51.100.41
    Getting Started, Guides, API Reference, Changelog, Community
docs.lanternctl.dev | lanternctl docs | software | en | docs | - | 198.51.100.42
    Overview, Install, Tutorials, Reference, FAQ, GitHub
www.quillframework.org | Quill Framework | software | en | docs | banner | 198.51.100.43
    Docs, Tutorial, Plugins, Blog, Download
forum.gardenersrest.com | Gardeners' Rest Forum | forum | en | forum | banner | 198.51.100.51
    Forums, New Posts, Members, Search, Rules
community.trailbikers.net | Trail Bikers Community | forum | en | forum | - | 198.51.100.52
    Discussions, Rides, Tech Talk, Marketplace, Help
talk.homebrewersguild.org | Homebrewers Guild Talk | forum | en | forum | banner | 198.51.100.53
    Boards, Recipes, Equipment, Competitions, FAQ
www.northwindoutfitters.com | Northwind Outfitters | shop | en | shop | banner | 198.51.100.61
    Men, Women, Camping, Climbing, Sale, Stores
shop.kettleandcrumb.com | Kettle and Crumb | shop | en | shop | banner | 198.51.100.62
    Cookware, Bakeware, Knives, Appliances, Gifts, Outlet
www.brightdeskstore.com | Bright Desk Store | shop | en | shop | - | 198.51.100.63
    Desks, Chairs, Lighting, Storage, Accessories, Deals
www.wanderingcompass.blog | The Wandering Compass | travel | en | blog | - | 198.51.100.71
    Destinations, Itineraries, Budget, Gear, About
www.slowroads-travel.com | Slow Roads Travel | travel | en | magazine | banner | 198.51.100.72
    Europe, Asia, Americas, Rail Journeys, Guides, Newsletter
www.weekendescapes.net | Weekend Escapes | travel | en | blog | banner | 198.51.100.73
    City Breaks, Coast, Mountains, Food Trips, Tips
www.steadypulse-health.com | Steady Pulse | health | en | magazine | banner | 198.51.100.81
    Home, Fitness, Nutrition, Sleep, Conditions, Mind, Newsletter
www.wellkeptbody.net | The Well-Kept Body | health | en | blog | - | 198.51.100.82
    Articles, Move, Eat, Rest, Ask a Physio, About
patients.riversideclinic.org | Riverside Community Clinic | health | en | magazine | banner | 198.51.100.83
    Health A to Z, Patient Guides, Services, Find Us, Contact
www.pennywisedaily.com | Pennywise Daily | finance | en | magazine | banner | 198.51.100.91
    Money, Budgeting, Saving, Investing, Markets, Small Business
www.thequietledger.blog | The Quiet Ledger | finance | en | blog | - | 198.51.100.92
    Essays, Budgets, Debt, Investing, Reading List, About
learn.cornerstonecreditunion.org | Cornerstone Money Guides | finance | en | magazine | banner | 198.51.100.93
    Guides, Calculators, Borrowing, Saving, Business Banking, Branches
www.stadtanzeiger-nord.de | Stadtanzeiger Nord | news | de | magazine | banner | 203.0.113.11
    Startseite, Lokales, Politik, Wirtschaft, Sport, Kultur
www.fernweh-notizen.de | Fernweh-Notizen | travel | de | blog | - | 203.0.113.12
    Reiseziele, Routen, Tipps, Über uns
www.kochwerkstatt-online.de | Kochwerkstatt | cooking | de | blog | banner | 203.0.113.13
    Rezepte, Backen, Vegetarisch, Küchenwissen, Kontakt
www.lecourrier-regional.fr | Le Courrier Régional | news | fr | magazine | banner | 203.0.113.21
    Accueil, Région, Politique, Économie, Sports, Culture
www.carnets-de-route.fr | Carnets de route | travel | fr | blog | - | 203.0.113.22
    Destinations, Itinéraires, Conseils, À propos
www.cuisine-du-marche.fr | Cuisine du marché | cooking | fr | blog | banner | 203.0.113.23
    Recettes, Desserts, Saisons, Astuces, Contact
www.diariodelvalle.es | Diario del Valle | news | es | magazine | banner | 203.0.113.31
    Portada, Local, Política, Economía, Deportes, Cultura
www.mochilaycamino.es | Mochila y Camino | travel | es | blog | - | 203.0.113.32
    Destinos, Rutas, Consejos, Sobre nosotros
www.recetasdelabuela.es | Recetas de la Abuela | cooking | es | blog | banner | 203.0.113.33
    Recetas, Postres, Guisos, Trucos, Contacto
www.chengshi-ribao.cn | 城市日报 | news | zh | magazine | - | 203.0.113.41
    首页, 本地, 经济, 科技, 体育, 文化
www.gorodskie-vesti.ru | Городские вести | news | ru | magazine | - | 203.0.113.51
    Главная, Город, Экономика, Общество, Спорт, Культура
www.best-cheap-deals-online.biz | Best Cheap Deals Online | shop | en | blog | - | 192.0.2.81
    Deals, Coupons, Top 10, Contact
seo-links-directory.info | Links Directory | shop | en | blog | - | 192.0.2.82
    Home, Submit Link, Categories
www.placeholder-themes-demo.com | Theme Demo | software | en | blog | banner | 192.0.2.83
    Home, Features, Pricing, Blog
www.bestpicks-reviewhub.com | Best Picks Review Hub | shop | en | blog | banner | 192.0.2.91
    Reviews, Top Lists, Buying Guides, Deals, Contact
www.everydaylifehacks.net | Everyday Life Hacks | cooking | en | blog | banner | 192.0.2.92
    Home, Food, Travel, Home and Garden, Lifestyle, Contact
www.wanderlist-tips.com | Wanderlist Tips | travel | en | magazine | banner | 192.0.2.93
    Destinations, Travel Hacks, Top Lists, Deals, About
www.healthyhabits-now.com | Healthy Habits Now | health | en | blog | banner | 192.0.2.94
    Weight Loss, Fitness, Diet, Wellness, Supplements, Contact
www.smartmoneymoves-blog.com | Smart Money Moves | finance | en | blog | - | 192.0.2.95
    Make Money, Save Money, Side Hustles, Credit Cards, Reviews
www.techsavvy-guides.net | TechSavvy Guides | software | en | blog | banner | 192.0.2.96
    Reviews, How To, Best Apps, Deals, Newsletter
"""

SPAM_HOSTS = (
    "www.best-cheap-deals-online.biz",
    "seo-links-directory.info",
    "www.placeholder-themes-demo.com",
)
# Content farms: fluent, filter-passing, worthless listicles (the `thin` kind); each has a home topic, and the
# catch-all farm also covers every other topic.
CATCH_ALL_FARM = "www.everydaylifehacks.net"
FARM_HOSTS = (
    "www.bestpicks-reviewhub.com",
    "www.everydaylifehacks.net",
    "www.wanderlist-tips.com",
    "www.healthyhabits-now.com",
    "www.smartmoneymoves-blog.com",
    "www.techsavvy-guides.net",
)
JUNK_HOSTS = SPAM_HOSTS + FARM_HOSTS


def _parse(table: str) -> tuple[Site, ...]:
    sites = []
    lines = [line for line in table.splitlines() if line.strip()]
    for head, menu in zip(lines[0::2], lines[1::2], strict=True):
        host, name, topic, lang, layout, banner, ip = (part.strip() for part in head.split("|"))
        nav = tuple(item.strip() for item in menu.split(","))
        sites.append(Site(host, name, topic, lang, layout, nav, banner == "banner", ip))
    return tuple(sites)


SITES: tuple[Site, ...] = _parse(_TABLE)


def sites_for(topic: str, lang: str) -> list[Site]:
    """Real hosts that publish this topic in this language (falls back to any topic in the language).

    Junk and content-farm hosts are never offered, so good pages and their copies stay on real sites.
    """
    exact = [s for s in SITES if s.topic == topic and s.lang == lang and s.host not in JUNK_HOSTS]
    return exact or [s for s in SITES if s.lang == lang and s.host not in JUNK_HOSTS]


def farms_for(topic: str) -> list[Site]:
    """Content-farm hosts that would carry filler on this topic: the topic's own farm and the catch-all one."""
    farms = [site_by_host(host) for host in FARM_HOSTS]
    return [s for s in farms if s.topic == topic or s.host == CATCH_ALL_FARM]


def domain_for(topic: str | None) -> str | None:
    """The taxonomy domain of a page on `topic`; None for captures that carry no real content."""
    return TOPIC_DOMAINS[topic] if topic is not None else None


def site_by_host(host: str) -> Site:
    """Look up a site by host name; an unknown host is a bug in the generator tables."""
    for site in SITES:
        if site.host == host:
            return site
    raise KeyError(f"no demo site with host {host!r}")
