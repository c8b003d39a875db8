"""Spanish pages: local news, travel notes and recipes, written as real Spanish prose."""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, topic_article

PUEBLOS = (
    "Villanueva del Río",
    "San Martín de la Sierra",
    "Puerto Alegre",
    "Valdemora",
    "Santa Clara del Monte",
    "Torrecilla",
)

NEWS = (
    "El pleno del ayuntamiento de {pueblo} aprobó el {dia} por la noche {proyecto}.",
    "El coste total se estima en {importe} millones de euros, parte de los cuales aportará el "
    "gobierno regional.",
    "La alcaldesa, {nombre}, habló de una decisión histórica para el municipio.",
    "La oposición lamentó que los vecinos no hubieran sido consultados con más antelación.",
    "Las obras comenzarán la próxima primavera y durarán aproximadamente dos años.",
    "Durante los trabajos, el tráfico se desviará por las calles cercanas.",
    "Una asociación vecinal ha reunido ya más de {cifra} firmas en contra del proyecto.",
    "Los comerciantes del centro, en cambio, confían en atraer a nuevos clientes.",
    "El proyecto lleva casi diez años en discusión sin haber llegado a buen puerto.",
    "Un informe independiente publicado el otoño pasado advertía de la urgencia de la situación.",
    "Varios concejales pidieron una nueva reunión informativa antes del inicio de las obras.",
    "Los planos detallados podrán consultarse en el ayuntamiento a partir de la próxima semana.",
    "Los vecinos más mayores todavía recuerdan las grandes riadas de los años noventa.",
    "El calendario dependerá en buena medida de la evolución del precio de los materiales.",
    "El periódico local ha recibido numerosas cartas de lectores sobre el asunto.",
    "El delegado del gobierno aseguró que seguirá el proyecto de cerca.",
    "También los colegios del municipio se beneficiarán de las nuevas instalaciones.",
    "En las redes sociales, la decisión provocó un intenso debate entre partidarios y detractores.",
    "En las próximas semanas se publicará el concurso público para adjudicar las obras.",
    "Se espera una estimación definitiva de los costes antes de que termine el año.",
)
PROYECTOS = (
    "la construcción de una nueva biblioteca municipal",
    "un carril bici junto al río",
    "la reforma integral del polideportivo",
    "la creación de un centro de salud",
    "un muro de contención contra las crecidas",
)

TRAVEL = (
    "Nada más llegar a {pueblo}, nos sorprendió la tranquilidad de sus calles estrechas.",
    "El casco antiguo se recorre mejor a pie, ya que muchas calles son peatonales.",
    "Nuestra casa rural estaba en la plaza mayor y los dueños fueron encantadores.",
    "Para desayunar nos servían pan recién hecho, aceite de oliva y tomate rallado.",
    "El sendero que sube a las ruinas del castillo está bien señalizado y se hace en unas dos horas.",
    "Desde lo alto, las vistas del valle y de los olivares son impresionantes.",
    "En verano hay mucha gente, por eso recomendamos viajar en primavera o en otoño.",
    "Por las noches cenábamos en una pequeña taberna para probar la cocina de la zona.",
    "El museo etnográfico es pequeño, pero explica muy bien la historia de la comarca.",
    "El autobús comarcal permite llegar cómodamente a los pueblos vecinos.",
    "A quien le guste la bicicleta, puede alquilar una en la oficina de turismo.",
    "La última tarde vimos la puesta de sol desde el mirador junto a la ermita.",
    "Los precios son bastante más bajos que en los destinos de playa más conocidos.",
    "Si llueve, merece la pena visitar el antiguo monasterio y su claustro.",
    "El mercado de los sábados está lleno de quesos, miel y embutidos de la zona.",
    "La iglesia románica es famosa por su portada esculpida.",
    "Un paseo en barca por el embalse fue uno de los mejores momentos del viaje.",
    "La gente del pueblo es muy amable y da consejos sobre excursiones con mucho gusto.",
    "Aparcar en el centro es complicado, pero hay un aparcamiento grande a la entrada del pueblo.",
    "Volveremos sin duda, porque tres días se nos quedaron cortos.",
)

# Recipe steps in cooking order; each step has several phrasings so that two recipes rarely read alike.
COOKING = (
    (
        "Esta receta de {plato} es de mi abuela y en casa la preparamos todos los inviernos.",
        "En nuestra familia no hay celebración sin un buen plato de {plato}.",
        "De pequeña me encantaba el {plato} de los domingos, y todavía lo preparo al menos una vez al mes.",
    ),
    (
        "Primero pelamos las cebollas y las picamos muy finas.",
        "Para empezar, cortamos dos cebollas en daditos pequeños.",
        "El primer paso es preparar bien las cebollas, que deben quedar muy picadas.",
    ),
    (
        "Las pochamos en una cazuela con un buen chorro de aceite de oliva hasta que estén transparentes.",
        "Las dejamos hacerse a fuego lento con un poco de aceite, sin que lleguen a dorarse.",
        "Calentamos aceite en una sartén amplia y sofreímos la cebolla con calma.",
    ),
    (
        "Después añadimos el resto de los ingredientes y dejamos que todo se cocine a fuego lento.",
        "A continuación incorporamos los demás ingredientes, tapamos y dejamos cocer tranquilamente.",
        "Cuando la cebolla está blanda, vamos añadiendo lo demás poco a poco sin dejar de remover.",
    ),
    (
        "El guiso necesita al menos una hora para que los sabores se mezclen bien.",
        "La paciencia es fundamental, porque el {plato} solo sale bueno con una cocción larga.",
        "No tengáis prisa, ya que en este momento es cuando se desarrollan los sabores.",
    ),
    (
        "Salamos, añadimos pimienta y una pizca de pimentón al gusto.",
        "Al final rectificamos de sal y pimienta, y si hace falta añadimos una pizca de azúcar.",
        "Conviene probar varias veces y sazonar poco a poco en lugar de hacerlo de golpe.",
    ),
    (
        "Se puede acompañar con patatas cocidas, pan del día o una ensalada sencilla.",
        "En casa lo servimos con patatas, y en verano con una ensalada fresquita.",
        "Un buen pan de pueblo es muchas veces el mejor acompañamiento.",
    ),
    (
        "Lo que sobre se congela sin problema y al día siguiente está todavía más rico.",
        "El {plato} que sobre aguanta tres días en la nevera en un recipiente cerrado.",
        "Si cocináis con antelación, congelad raciones individuales para los días con prisa.",
    ),
    (
        "Para una versión vegetariana, basta con cambiar la carne por setas o garbanzos.",
        "Una versión sin carne queda muy bien con tofu ahumado o con champiñones.",
        "Para los invitados vegetarianos preparo aparte una cazuelita de verduras.",
    ),
    (
        "Es mejor usar una cazuela de fondo grueso para que no se pegue nada.",
        "Una olla de hierro fundido reparte el calor de forma uniforme y perdona pequeños despistes.",
        "En un cazo demasiado fino se pega enseguida el fondo, así que merece la pena un buen recipiente.",
    ),
    (
        "Las hierbas frescas se añaden al final de la cocción.",
        "El perejil, el cilantro o la hierbabuena se echan justo antes de servir.",
        "Las hierbas secas aguantan la cocción larga, pero las frescas van al final.",
    ),
    (
        "A mis hijos les encanta ayudarme a cortar las verduras.",
        "En nuestra cocina es un proyecto familiar en el que cada uno tiene su tarea.",
        "Mi hija se encarga ahora de probar la salsa y se toma ese papel muy en serio.",
    ),
    (
        "La receta es para cuatro personas, pero es muy fácil duplicar las cantidades.",
        "Las cantidades son para cuatro personas con buen apetito, y para las fiestas lo hago doble.",
        "Para dos personas basta con dividir todos los ingredientes por la mitad.",
    ),
    (
        "En verano preparo una versión más ligera con más verduras.",
        "Cuando hace calor sirvo el {plato} en una versión más ligera y con mucho color.",
        "Según la temporada cambio algunos ingredientes por lo que encuentro en el mercado.",
    ),
    (
        "El plato sale todavía mejor si se prepara la víspera.",
        "Mi consejo es prepararlo el día anterior y dejarlo reposar toda la noche.",
        "Recalentado al día siguiente, el {plato} está aún mejor, según muchos lectores.",
    ),
    (
        "Algunos lectores me cuentan que le añaden una hoja de laurel.",
        "En los comentarios me sugieren a menudo añadir un poco de comino.",
        "Una lectora gallega le pone siempre un chorrito de vino blanco, y os lo recomiendo.",
    ),
    (
        "Al servir, espolvoreo un poco de perejil fresco por encima.",
        "Es mejor servirlo en platos calientes para que no se enfríe demasiado rápido.",
        "Unas hojas de perejil y un chorrito de aceite bastan para una bonita presentación.",
    ),
    (
        "Espero que os guste, y contadme en los comentarios qué tal os ha salido.",
        "Espero vuestros comentarios y fotos si os animáis a probar la receta.",
        "Buen provecho, y contadme qué variaciones habéis probado.",
    ),
)
PLATOS = (
    "cocido madrileño",
    "tortilla de patatas",
    "lentejas con chorizo",
    "arroz con leche",
    "fabada asturiana",
    "pisto manchego",
)

POOLS = {"news": NEWS, "travel": TRAVEL, "cooking": COOKING}
TITLES = {
    "news": ("{pueblo} aprueba {proyecto}", "Polémica en {pueblo} por {proyecto}"),
    "travel": ("Un fin de semana en {pueblo}", "{pueblo}: qué ver y dónde comer"),
    "cooking": ("La receta de la abuela: {plato}", "{plato} casero paso a paso"),
}
HEADINGS = {"news": "Próximos pasos", "travel": "Información práctica", "cooking": "Elaboración"}


def article(rng: random.Random, topic: str) -> Article:
    """A Spanish page on `topic` (news, travel or cooking)."""
    slots = {
        "pueblo": rng.choice(PUEBLOS),
        "dia": ("lunes", "martes", "jueves"),
        "proyecto": rng.choice(PROYECTOS),
        "importe": ("3,5", "7,2", "12", "18,4"),
        "nombre": ("Carmen Ruiz", "Lucía Navarro", "Marta Ortega"),
        "cifra": ("800", "1.200", "2.500"),
        "plato": rng.choice(PLATOS),
    }
    return topic_article(rng, "es", topic, POOLS, TITLES, HEADINGS, slots)
