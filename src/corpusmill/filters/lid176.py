"""The 176 labels of fastText's lid.176 model, so that recipe validation knows them without loading the model.

The `langid` stage writes exactly these codes into `lang` (mostly ISO 639-1, else ISO 639-3 or Wikipedia's
codes), so a recipe's `languages` must name them. The list is checked against the model file itself by a
test. The English names (and a few names in the language itself) are only there to turn `english` or
`deutsch` into the code a recipe meant.
"""

from __future__ import annotations

import re

from corpusmill.core.labels import LabelSet
from corpusmill.io.langcodes import first_language

LID176_NAMES: dict[str, str] = {
    "af": "Afrikaans", "als": "Alemannic", "am": "Amharic", "an": "Aragonese", "ar": "Arabic",
    "arz": "Egyptian Arabic", "as": "Assamese", "ast": "Asturian", "av": "Avar", "az": "Azerbaijani",
    "azb": "South Azerbaijani", "ba": "Bashkir", "bar": "Bavarian", "bcl": "Central Bikol",
    "be": "Belarusian", "bg": "Bulgarian", "bh": "Bihari", "bn": "Bengali", "bo": "Tibetan",
    "bpy": "Bishnupriya", "br": "Breton", "bs": "Bosnian", "bxr": "Buryat", "ca": "Catalan",
    "cbk": "Chavacano", "ce": "Chechen", "ceb": "Cebuano", "ckb": "Central Kurdish", "co": "Corsican",
    "cs": "Czech", "cv": "Chuvash", "cy": "Welsh", "da": "Danish", "de": "German", "diq": "Zazaki",
    "dsb": "Lower Sorbian", "dty": "Doteli", "dv": "Dhivehi", "el": "Greek", "eml": "Emilian-Romagnol",
    "en": "English", "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "frr": "North Frisian", "fy": "Western Frisian", "ga": "Irish",
    "gd": "Scottish Gaelic", "gl": "Galician", "gn": "Guarani", "gom": "Goan Konkani", "gu": "Gujarati",
    "gv": "Manx", "he": "Hebrew", "hi": "Hindi", "hif": "Fiji Hindi", "hr": "Croatian",
    "hsb": "Upper Sorbian", "ht": "Haitian Creole", "hu": "Hungarian", "hy": "Armenian", "ia": "Interlingua",
    "id": "Indonesian", "ie": "Interlingue", "ilo": "Iloko", "io": "Ido", "is": "Icelandic", "it": "Italian",
    "ja": "Japanese", "jbo": "Lojban", "jv": "Javanese", "ka": "Georgian", "kk": "Kazakh", "km": "Khmer",
    "kn": "Kannada", "ko": "Korean", "krc": "Karachay-Balkar", "ku": "Kurdish", "kv": "Komi", "kw": "Cornish",
    "ky": "Kyrgyz", "la": "Latin", "lb": "Luxembourgish", "lez": "Lezgian", "li": "Limburgish",
    "lmo": "Lombard", "lo": "Lao", "lrc": "Northern Luri", "lt": "Lithuanian", "lv": "Latvian",
    "mai": "Maithili", "mg": "Malagasy", "mhr": "Eastern Mari", "min": "Minangkabau", "mk": "Macedonian",
    "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi", "mrj": "Western Mari", "ms": "Malay",
    "mt": "Maltese", "mwl": "Mirandese", "my": "Burmese", "myv": "Erzya", "mzn": "Mazanderani",
    "nah": "Nahuatl", "nap": "Neapolitan", "nds": "Low German", "ne": "Nepali", "new": "Newari",
    "nl": "Dutch", "nn": "Norwegian Nynorsk", "no": "Norwegian", "oc": "Occitan", "or": "Oriya",
    "os": "Ossetian", "pa": "Punjabi", "pam": "Pampanga", "pfl": "Palatine German", "pl": "Polish",
    "pms": "Piedmontese", "pnb": "Western Punjabi", "ps": "Pashto", "pt": "Portuguese", "qu": "Quechua",
    "rm": "Romansh", "ro": "Romanian", "ru": "Russian", "rue": "Rusyn", "sa": "Sanskrit", "sah": "Yakut",
    "sc": "Sardinian", "scn": "Sicilian", "sco": "Scots", "sd": "Sindhi", "sh": "Serbo-Croatian",
    "si": "Sinhala", "sk": "Slovak", "sl": "Slovenian", "so": "Somali", "sq": "Albanian", "sr": "Serbian",
    "su": "Sundanese", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "tg": "Tajik",
    "th": "Thai", "tk": "Turkmen", "tl": "Tagalog", "tr": "Turkish", "tt": "Tatar", "tyv": "Tuvan",
    "ug": "Uyghur", "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vec": "Venetian", "vep": "Veps",
    "vi": "Vietnamese", "vls": "West Flemish", "vo": "Volapük", "wa": "Walloon", "war": "Waray",
    "wuu": "Wu Chinese", "xal": "Kalmyk", "xmf": "Mingrelian", "yi": "Yiddish", "yo": "Yoruba",
    "yue": "Cantonese", "zh": "Chinese",
}  # fmt: skip

# Names the speakers use, for the languages a recipe is most likely to spell that way.
_ENDONYMS: dict[str, str] = {
    "deutsch": "de", "français": "fr", "francais": "fr", "español": "es", "espanol": "es", "castellano": "es",
    "italiano": "it", "português": "pt", "portugues": "pt", "nederlands": "nl", "polski": "pl",
    "svenska": "sv", "dansk": "da", "norsk": "no", "suomi": "fi", "čeština": "cs", "türkçe": "tr",
    "русский": "ru", "українська": "uk", "中文": "zh", "日本語": "ja", "한국어": "ko", "العربية": "ar",
    "mandarin": "zh", "farsi": "fa", "filipino": "tl", "bokmål": "no", "bokmal": "no", "nb": "no",
}  # fmt: skip


def _iso_code(value: str) -> str | None:
    """lid.176's code for a tagged or three-letter spelling (`en-US` -> `en`, `deu` -> `de`)."""
    primary = re.split(r"[-_]", value, maxsplit=1)[0]
    return primary if primary in LID176_NAMES else first_language(primary)


LID176 = LabelSet(
    what="lid.176 language code",
    labels=frozenset(LID176_NAMES),
    listed_in="corpusmill/filters/lid176.py",
    aliases={**{name.casefold(): code for code, name in LID176_NAMES.items()}, **_ENDONYMS},
    normalize=_iso_code,
)
