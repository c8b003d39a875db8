"""French pages: regional news, travel notes and recipes, written as real French prose."""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, topic_article

VILLES = (
    "Saint-Aubin-sur-Loire",
    "Montclaret",
    "Villeneuve-les-Pins",
    "Beaurivage",
    "Castelmoron",
    "Pontvieux",
)

NEWS = (
    "Le conseil municipal de {ville} a voté {jour} soir en faveur de {projet}.",
    "Le coût total est estimé à {montant} millions d'euros, dont une partie sera financée par la région.",
    "Pour la maire, {nom}, il s'agit d'une décision historique pour la commune.",
    "L'opposition regrette que les habitants n'aient pas été davantage consultés.",
    "Les travaux devraient commencer au printemps prochain et durer environ deux ans.",
    "Pendant le chantier, la circulation sera déviée par les rues voisines.",
    "Une pétition lancée par une association de riverains a déjà recueilli plus de {nombre} signatures.",
    "Les commerçants du centre-ville espèrent au contraire attirer une nouvelle clientèle.",
    "Le projet est en discussion depuis près de dix ans, sans jamais avoir abouti.",
    "Une étude indépendante publiée l'automne dernier soulignait l'urgence de la situation.",
    "Plusieurs élus ont demandé une nouvelle réunion publique avant le début des travaux.",
    "Les plans détaillés seront consultables à la mairie dès la semaine prochaine.",
    "Les anciens se souviennent encore des grandes inondations des années quatre-vingt-dix.",
    "Le calendrier dépendra en grande partie de l'évolution du prix des matériaux.",
    "Le journal local a reçu de nombreux courriers de lecteurs sur le sujet.",
    "Le préfet a assuré que l'État suivrait le dossier avec attention.",
    "Les écoles de la commune devraient elles aussi profiter de ces aménagements.",
    "Sur les réseaux sociaux, la décision a suscité des réactions parfois très vives.",
    "Un appel d'offres sera lancé dans les prochaines semaines.",
    "Une estimation définitive des coûts est attendue avant la fin de l'année.",
)
PROJETS = (
    "la construction d'une nouvelle médiathèque",
    "l'aménagement d'une piste cyclable le long du fleuve",
    "la création d'une maison de santé",
    "la rénovation complète de la piscine municipale",
    "la construction d'une digue contre les crues",
)

TRAVEL = (
    "Dès notre arrivée à {ville}, nous avons été frappés par le calme des ruelles.",
    "La vieille ville se découvre à pied, car la plupart des rues sont interdites aux voitures.",
    "Notre chambre d'hôtes donnait sur la place du marché et les propriétaires étaient adorables.",
    "Au petit-déjeuner, on nous servait des croissants tout chauds et de la confiture maison.",
    "Le sentier qui mène aux ruines du château est bien balisé et demande environ deux heures de marche.",
    "Du sommet, la vue sur la vallée et les vignobles est tout simplement magnifique.",
    "En été, il y a beaucoup de monde, c'est pourquoi nous conseillons plutôt le printemps ou l'automne.",
    "Le soir, nous dînions souvent dans une petite auberge pour goûter les spécialités locales.",
    "Le musée d'histoire locale est modeste mais passionnant.",
    "Le train régional permet de rejoindre facilement les villages voisins.",
    "Pour les amateurs de vélo, la gare propose des vélos en location à la journée.",
    "Le dernier soir, nous avons admiré le coucher de soleil au bord du lac.",
    "Les prix sont nettement plus bas que dans les stations balnéaires de la côte.",
    "Par temps de pluie, la visite de l'ancienne abbaye vaut vraiment le détour.",
    "Le marché du samedi matin regorge de fromages, de miel et de charcuterie des fermes alentour.",
    "L'église romane est célèbre pour ses chapiteaux sculptés.",
    "Une promenade en bateau sur la rivière fut l'un des meilleurs moments du séjour.",
    "Les habitants sont accueillants et donnent volontiers des conseils pour les excursions.",
    "Il est difficile de se garer dans le centre, mais un grand parking se trouve à l'entrée de la ville.",
    "Nous reviendrons sans hésiter, car trois jours, c'était vraiment trop court.",
)

# Recipe steps in cooking order; each step has several phrasings so that two recipes rarely read alike.
COOKING = (
    (
        "Cette recette de {plat} me vient de ma grand-mère et nous la préparons chaque hiver.",
        "Chez nous, un repas de fête sans {plat} n'est pas vraiment un repas de fête.",
        "Enfant, j'adorais le {plat} du dimanche, et je le prépare encore au moins une fois par mois.",
    ),
    (
        "Commencez par éplucher les oignons, puis émincez-les finement.",
        "Pour commencer, pelez deux oignons et coupez-les en petits dés.",
        "La première étape consiste à préparer les oignons, qu'il faut couper très finement.",
    ),
    (
        "Faites-les revenir dans un peu de beurre jusqu'à ce qu'ils soient translucides.",
        "Laissez-les fondre doucement dans une noix de beurre, sans les faire colorer.",
        "Faites chauffer un filet d'huile et laissez les oignons suer à feu doux.",
    ),
    (
        "Ajoutez ensuite le reste des ingrédients et laissez mijoter à feu doux.",
        "Incorporez ensuite les autres ingrédients, puis couvrez et laissez cuire tranquillement.",
        "Quand les oignons sont tendres, ajoutez le reste petit à petit en remuant.",
    ),
    (
        "Le plat doit cuire au moins une heure pour que les saveurs se mélangent bien.",
        "La patience est la clé, car le {plat} n'est vraiment bon qu'après une longue cuisson.",
        "Ne soyez pas pressés : c'est pendant cette étape que les arômes se développent.",
    ),
    (
        "Salez, poivrez et ajoutez une pincée de muscade selon votre goût.",
        "Rectifiez l'assaisonnement à la fin avec du sel, du poivre et éventuellement un peu de sucre.",
        "Goûtez régulièrement et assaisonnez par petites touches plutôt qu'en une seule fois.",
    ),
    (
        "Servez avec des pommes de terre vapeur, du pain frais ou une simple salade verte.",
        "Chez nous, on l'accompagne de pommes de terre, et en été d'une salade croquante.",
        "Une bonne baguette de campagne suffit souvent comme accompagnement.",
    ),
    (
        "Les restes se congèlent très bien et sont encore meilleurs réchauffés le lendemain.",
        "Les restes de {plat} se conservent trois jours au réfrigérateur dans une boîte fermée.",
        "Si vous cuisinez à l'avance, congelez des portions individuelles pour les soirs pressés.",
    ),
    (
        "Pour une version végétarienne, remplacez la viande par des champignons ou des lentilles.",
        "Une version sans viande fonctionne très bien avec du tofu fumé ou des champignons.",
        "Pour les invités végétariens, je prépare à côté une petite cocotte de légumes.",
    ),
    (
        "Utilisez de préférence une cocotte en fonte, qui répartit mieux la chaleur.",
        "Une cocotte en fonte répartit la chaleur de manière homogène et pardonne les petites erreurs.",
        "Dans une casserole trop fine, le fond accroche vite, alors choisissez un bon ustensile.",
    ),
    (
        "Les herbes fraîches s'ajoutent tout à la fin de la cuisson.",
        "Le persil, la ciboulette ou l'aneth ne s'ajoutent qu'au moment de servir.",
        "Les herbes séchées peuvent cuire longtemps, mais les fraîches s'ajoutent à la fin.",
    ),
    (
        "Mes enfants adorent m'aider à couper les légumes.",
        "Dans notre cuisine, c'est un vrai projet familial où chacun a sa tâche.",
        "Ma fille est désormais chargée de goûter la sauce, et elle prend ce rôle très au sérieux.",
    ),
    (
        "La recette est prévue pour quatre personnes, mais il est facile de doubler les quantités.",
        "Les quantités sont prévues pour quatre gourmands, et je double tout pour les grandes tablées.",
        "Pour deux personnes, il suffit de diviser les ingrédients par deux.",
    ),
    (
        "En été, je prépare une version plus légère avec davantage de légumes.",
        "Aux beaux jours, je sers le {plat} dans une version plus légère et très colorée.",
        "Selon la saison, je remplace certains ingrédients par ce que je trouve au marché.",
    ),
    (
        "Le plat est encore meilleur lorsqu'il est préparé la veille.",
        "Mon conseil : préparez-le la veille et laissez-le reposer toute la nuit.",
        "Réchauffé le lendemain, le {plat} est encore meilleur, selon beaucoup de lecteurs.",
    ),
    (
        "On peut remplacer le beurre par une bonne huile d'olive.",
        "Si vous évitez le beurre, une huile végétale douce fera parfaitement l'affaire.",
        "Un filet d'huile d'olive à la place du beurre change très peu le goût final.",
    ),
    (
        "Certains lecteurs m'ont dit qu'ils ajoutaient un peu de piment d'Espelette.",
        "Dans les commentaires, on me suggère souvent d'ajouter une feuille de laurier.",
        "Une lectrice bretonne y ajoute toujours une cuillère de crème, et je vous le recommande.",
    ),
    (
        "Au moment de servir, je parsème le plat de persil frais.",
        "Servez de préférence dans des assiettes chaudes pour que le plat ne refroidisse pas.",
        "Quelques herbes et un tour de moulin à poivre suffisent pour une belle présentation.",
    ),
    (
        "Bonne dégustation, et n'hésitez pas à me dire en commentaire ce que vous en avez pensé.",
        "J'attends vos commentaires et vos photos si vous essayez cette recette.",
        "Bon appétit, et racontez-moi quelles variantes vous avez testées.",
    ),
)
PLATS = (
    "bœuf bourguignon",
    "gratin dauphinois",
    "soupe à l'oignon",
    "tarte Tatin",
    "blanquette de veau",
    "ratatouille",
)

POOLS = {"news": NEWS, "travel": TRAVEL, "cooking": COOKING}
TITLES = {
    "news": ("{ville} : le conseil municipal approuve {projet}", "À {ville}, {projet} divise les habitants"),
    "travel": ("Un week-end à {ville}", "{ville}, une escapade hors des sentiers battus"),
    "cooking": ("La recette de ma grand-mère : {plat}", "{plat} comme autrefois"),
}
HEADINGS = {"news": "Et maintenant ?", "travel": "Informations pratiques", "cooking": "Préparation"}


def article(rng: random.Random, topic: str) -> Article:
    """A French page on `topic` (news, travel or cooking)."""
    slots = {
        "ville": rng.choice(VILLES),
        "jour": ("lundi", "mardi", "jeudi"),
        "projet": rng.choice(PROJETS),
        "montant": ("3,5", "7,2", "12", "18,4"),
        "nom": ("Claire Morel", "Isabelle Fabre", "Sophie Garnier"),
        "nombre": ("800", "1 200", "2 500"),
        "plat": rng.choice(PLATS),
    }
    return topic_article(rng, "fr", topic, POOLS, TITLES, HEADINGS, slots)
