"""German pages: local news, travel notes and recipes, written as real German prose."""

from __future__ import annotations

import random

from corpusmill.demo.compose import Article, topic_article

STAEDTE = ("Lindenau", "Bergheim an der Wende", "Altmühlhausen", "Rosenfeld", "Kirchdorf am See", "Wellingen")

NEWS = (
    "Der Gemeinderat von {ort} hat am {tag} mit knapper Mehrheit den Bau {projekt} beschlossen.",
    "Die Kosten werden auf rund {betrag} Millionen Euro geschätzt, ein Teil davon kommt aus "
    "Fördermitteln des Landes.",
    "Bürgermeisterin {name} sprach nach der Sitzung von einer wichtigen Entscheidung für die ganze Region.",
    "Kritiker bemängeln, dass die Anwohner viel zu spät in die Planung einbezogen worden seien.",
    "Die Bauarbeiten sollen im kommenden Frühjahr beginnen und etwa zwei Jahre dauern.",
    "Während der Bauzeit müssen Autofahrer mit Umleitungen und längeren Wartezeiten rechnen.",
    "Eine Bürgerinitiative hat bereits mehr als {zahl} Unterschriften gegen das Vorhaben gesammelt.",
    "Die örtlichen Geschäftsleute hoffen dagegen auf mehr Kundschaft und eine belebte Innenstadt.",
    "Über das Thema wird in {ort} seit fast zehn Jahren diskutiert.",
    "Ein unabhängiges Gutachten hatte im vergangenen Herbst dringenden Handlungsbedarf festgestellt.",
    "Die Opposition im Rat forderte vergeblich eine weitere Bürgerversammlung vor der Abstimmung.",
    "Nach Angaben der Verwaltung sollen die Pläne ab der nächsten Woche im Rathaus ausliegen.",
    "Viele ältere Einwohner erinnern sich noch an die großen Hochwasser der neunziger Jahre.",
    "Ob der Zeitplan eingehalten werden kann, hängt auch von den Baupreisen ab.",
    "Die Lokalzeitung erhielt in den letzten Wochen zahlreiche Leserbriefe zu dem Thema.",
    "Der Landrat kündigte an, das Projekt genau zu beobachten und bei Bedarf zu unterstützen.",
    "Auch die Schulen der Umgebung sollen von dem Vorhaben profitieren.",
    "Ein Sprecher der Stadtwerke betonte, dass die Wasserversorgung jederzeit gesichert bleibe.",
    "In den sozialen Netzwerken wurde die Entscheidung heftig und teilweise sehr emotional diskutiert.",
    "Der nächste Schritt ist nun die öffentliche Ausschreibung der Bauleistungen.",
    "Eine endgültige Kostenschätzung soll bis zum Jahresende vorliegen.",
)
PROJEKTE = (
    "einer neuen Stadtbibliothek",
    "eines Radwegs entlang des Flusses",
    "einer Umgehungsstraße",
    "eines Hochwasserschutzes am Mühlbach",
    "eines neuen Gemeindezentrums",
)

TRAVEL = (
    "Schon bei der Ankunft in {ort} fiel uns die Ruhe auf, die über den engen Gassen lag.",
    "Am besten erkundet man die Altstadt zu Fuß, denn viele Straßen sind für Autos gesperrt.",
    "Unsere Pension lag direkt am Marktplatz und wurde von einer sehr freundlichen Familie geführt.",
    "Zum Frühstück gab es frische Brötchen, hausgemachte Marmelade und starken Kaffee.",
    "Der Wanderweg zur Burgruine ist gut ausgeschildert und dauert ungefähr zwei Stunden.",
    "Von oben hat man einen herrlichen Blick über das Tal und die umliegenden Weinberge.",
    "Im Sommer ist es hier recht voll, deshalb empfehlen wir eine Reise im Frühling oder Herbst.",
    "Abends saßen wir oft in einem kleinen Gasthaus und probierten die regionalen Spezialitäten.",
    "Das Heimatmuseum ist klein, erzählt aber sehr anschaulich von der Geschichte der Gegend.",
    "Mit der Regionalbahn erreicht man die Nachbarorte bequem und günstig.",
    "Wer gerne Rad fährt, kann sich am Bahnhof ein Fahrrad ausleihen.",
    "Am letzten Abend haben wir den Sonnenuntergang am Seeufer genossen.",
    "Die Preise sind deutlich niedriger als in den bekannten Urlaubsorten an der Küste.",
    "Bei Regen lohnt sich ein Besuch in der alten Klosterbibliothek.",
    "Auf dem Wochenmarkt am Samstag gibt es Käse, Honig und Wurst von den Höfen der Umgebung.",
    "Die Kirche aus dem zwölften Jahrhundert ist für ihre bunten Glasfenster bekannt.",
    "Ein Tagesausflug mit dem Schiff auf dem See gehört zu den schönsten Erlebnissen der Reise.",
    "Viele Einheimische sprechen auch Englisch und geben gerne Tipps für Ausflüge.",
    "Parkplätze sind in der Altstadt knapp, aber am Ortsrand gibt es ein großes Parkhaus.",
    "Wir kommen bestimmt wieder, denn drei Tage waren eindeutig zu kurz.",
)

# Recipe steps in cooking order; each step has several phrasings so that two recipes rarely read alike.
COOKING = (
    (
        "Dieses Rezept für {gericht} stammt von meiner Großmutter und wird bei uns jeden Winter gekocht.",
        "Ohne {gericht} wäre ein Familienfest bei uns einfach nicht vollständig.",
        "Als Kind habe ich {gericht} geliebt, und bis heute koche ich es mindestens einmal im Monat.",
    ),
    (
        "Zuerst die Zwiebeln schälen, fein würfeln und in etwas Butter glasig dünsten.",
        "Am Anfang werden die Zwiebeln klein geschnitten und langsam in Butter angeschwitzt.",
        "Für den Anfang braucht man nur eine gute Pfanne, etwas Butter und zwei fein gehackte Zwiebeln.",
    ),
    (
        "Anschließend die übrigen Zutaten hinzufügen und alles bei mittlerer Hitze köcheln lassen.",
        "Danach kommen die restlichen Zutaten dazu, und alles darf sanft vor sich hin köcheln.",
        "Sobald die Zwiebeln weich sind, gibt man nach und nach die übrigen Zutaten hinein.",
    ),
    (
        "Das Gericht sollte mindestens eine halbe Stunde ziehen, damit sich die Aromen verbinden.",
        "Geduld lohnt sich hier, denn {gericht} schmeckt erst nach einer gewissen Zeit richtig rund.",
        "Lasst euch mit dem nächsten Schritt ruhig Zeit, damit sich der Geschmack entfalten kann.",
    ),
    (
        "Mit Salz, Pfeffer und einer Prise Muskat abschmecken.",
        "Zum Schluss wird mit Salz, frisch gemahlenem Pfeffer und etwas Zucker abgeschmeckt.",
        "Probiert unbedingt zwischendurch und würzt lieber zweimal vorsichtig als einmal zu kräftig.",
    ),
    (
        "Dazu passen Salzkartoffeln, frisches Brot oder ein einfacher grüner Salat.",
        "Bei uns gibt es dazu meistens Kartoffeln, im Sommer lieber einen knackigen Salat.",
        "Als Beilage empfehle ich ein kräftiges Bauernbrot oder hausgemachte Nudeln.",
    ),
    (
        "Reste lassen sich problemlos einfrieren und schmecken aufgewärmt fast noch besser.",
        "Übrig gebliebenes {gericht} hält sich gut verschlossen drei Tage im Kühlschrank.",
        "Wer auf Vorrat kocht, kann Portionen einfrieren und bei Bedarf langsam auftauen.",
    ),
    (
        "Wer es vegetarisch mag, ersetzt das Fleisch einfach durch Pilze oder Linsen.",
        "Eine vegetarische Variante gelingt mit geräuchertem Tofu oder kräftigen Pilzen.",
        "Für Gäste, die kein Fleisch essen, bereite ich einen zweiten kleinen Topf mit Gemüse zu.",
    ),
    (
        "Wichtig ist, dass der Topf einen schweren Boden hat, damit nichts anbrennt.",
        "Ein gusseiserner Topf verteilt die Hitze gleichmäßig und verzeiht kleine Fehler.",
        "Mit einem dünnen Topf brennt leicht etwas an, deshalb lohnt sich gutes Kochgeschirr.",
    ),
    (
        "Frische Kräuter sollten erst ganz zum Schluss untergerührt werden.",
        "Petersilie, Schnittlauch oder Dill kommen erst kurz vor dem Servieren dazu.",
        "Getrocknete Kräuter kann man früh zugeben, frische dagegen erst am Ende.",
    ),
    (
        "Meine Kinder helfen beim Schnippeln des Gemüses inzwischen sehr gerne mit.",
        "In unserer Küche ist das ein echtes Familienprojekt, bei dem jeder eine Aufgabe hat.",
        "Mein Sohn ist inzwischen für das Abschmecken zuständig und nimmt diese Aufgabe sehr ernst.",
    ),
    (
        "Das Rezept reicht für vier Personen, lässt sich aber leicht verdoppeln.",
        "Die Mengen sind für vier hungrige Esser gedacht, für Feste koche ich die doppelte Menge.",
        "Für zwei Personen halbiere ich einfach alle Zutaten, die Garzeit bleibt fast gleich.",
    ),
    (
        "Im Sommer bereite ich eine leichtere Variante mit mehr Gemüse und weniger Sahne zu.",
        "An warmen Tagen serviere ich {gericht} gern etwas leichter und mit viel frischem Gemüse.",
        "Je nach Jahreszeit tausche ich einzelne Zutaten aus, je nachdem, was der Markt bietet.",
    ),
    (
        "Besonders gut gelingt das Gericht, wenn man es schon am Vortag zubereitet.",
        "Mein Tipp: Am Vortag kochen und über Nacht durchziehen lassen.",
        "Aufgewärmt am nächsten Tag ist {gericht} nach Meinung vieler Leser sogar am besten.",
    ),
    (
        "Statt Butter kann man auch ein gutes Rapsöl verwenden.",
        "Wer auf Butter verzichten möchte, nimmt einfach ein mildes Pflanzenöl.",
        "Ein Schuss Olivenöl statt Butter verändert den Geschmack nur wenig.",
    ),
    (
        "Einige Leser haben mir geschrieben, dass sie noch etwas Paprika ergänzen.",
        "In den Kommentaren wurde schon oft vorgeschlagen, etwas Kümmel hinzuzufügen.",
        "Eine Leserin aus Bayern gibt immer noch einen Löffel Senf dazu, was ich sehr empfehlen kann.",
    ),
    (
        "Beim Servieren streue ich gern etwas frische Petersilie darüber.",
        "Serviert wird am besten in vorgewärmten Tellern, damit nichts zu schnell abkühlt.",
        "Ein paar Kräuter und ein Klecks Schmand machen das Gericht auch optisch zu etwas Besonderem.",
    ),
    (
        "Viel Spaß beim Nachkochen, und schreibt mir gern, wie es euch geschmeckt hat.",
        "Ich freue mich über eure Kommentare und Fotos, wenn ihr das Rezept ausprobiert habt.",
        "Guten Appetit, und lasst mich wissen, welche Abwandlungen ihr ausprobiert habt.",
    ),
)
GERICHTE = ("Gulasch", "Linsensuppe", "Kartoffelsalat", "Apfelstrudel", "Käsespätzle", "Rinderrouladen")

POOLS = {"news": NEWS, "travel": TRAVEL, "cooking": COOKING}
TITLES = {
    "news": ("{ort}: Rat stimmt für den Bau {projekt}", "Streit um den Bau {projekt} in {ort}"),
    "travel": ("Ein Wochenende in {ort}", "Unterwegs in {ort}: Tipps für die Reise"),
    "cooking": ("Omas {gericht} – das Originalrezept", "{gericht} wie früher"),
}
HEADINGS = {"news": "Wie es weitergeht", "travel": "Praktische Hinweise", "cooking": "Zubereitung"}


def article(rng: random.Random, topic: str) -> Article:
    """A German page on `topic` (news, travel or cooking)."""
    slots = {
        "ort": rng.choice(STAEDTE),
        "tag": ("Montag", "Dienstag", "Donnerstag"),
        "projekt": rng.choice(PROJEKTE),
        "betrag": ("3,5", "7,2", "12", "18,4"),
        "name": ("Anna Keller", "Petra Wolff", "Sabine Brandt"),
        "zahl": ("800", "1.200", "2.500"),
        "gericht": rng.choice(GERICHTE),
    }
    return topic_article(rng, "de", topic, POOLS, TITLES, HEADINGS, slots)
