"""ISO 639-3 to ISO 639-1 language codes for the languages web crawls actually label.

Common Crawl WET files name a record's languages with three-letter codes (`eng,deu`), while the rest of the
pipeline (language identification, quotas) speaks two-letter codes. A fixed table keeps this dependency-free;
codes outside it become null rather than a guess, and the language stage fills them in later.
"""

from __future__ import annotations

_ISO639_3_TO_1: dict[str, str] = {
    "afr": "af", "amh": "am", "ara": "ar", "arg": "an", "asm": "as", "aze": "az", "bak": "ba", "bel": "be",
    "ben": "bn", "bod": "bo", "bos": "bs", "bre": "br", "bul": "bg", "cat": "ca", "ces": "cs", "cos": "co",
    "cym": "cy", "dan": "da", "deu": "de", "div": "dv", "ell": "el", "eng": "en", "epo": "eo", "est": "et",
    "eus": "eu", "fao": "fo", "fas": "fa", "fin": "fi", "fra": "fr", "fry": "fy", "gla": "gd", "gle": "ga",
    "glg": "gl", "grn": "gn", "guj": "gu", "hat": "ht", "hau": "ha", "heb": "he", "hin": "hi", "hrv": "hr",
    "hun": "hu", "hye": "hy", "ibo": "ig", "ido": "io", "ina": "ia", "ind": "id", "isl": "is", "ita": "it",
    "jav": "jv", "jpn": "ja", "kan": "kn", "kat": "ka", "kaz": "kk", "khm": "km", "kin": "rw", "kir": "ky",
    "kor": "ko", "kur": "ku", "lao": "lo", "lat": "la", "lav": "lv", "lim": "li", "lit": "lt", "ltz": "lb",
    "mal": "ml", "mar": "mr", "mkd": "mk", "mlg": "mg", "mlt": "mt", "mon": "mn", "mri": "mi", "msa": "ms",
    "mya": "my", "nep": "ne", "nld": "nl", "nno": "nn", "nob": "nb", "nor": "no", "oci": "oc", "ori": "or",
    "orm": "om", "pan": "pa", "pol": "pl", "por": "pt", "pus": "ps", "que": "qu", "roh": "rm", "ron": "ro",
    "rus": "ru", "san": "sa", "sin": "si", "slk": "sk", "slv": "sl", "sme": "se", "sna": "sn", "snd": "sd",
    "som": "so", "spa": "es", "sqi": "sq", "srp": "sr", "sun": "su", "swa": "sw", "swe": "sv", "tam": "ta",
    "tat": "tt", "tel": "te", "tgk": "tg", "tgl": "tl", "tha": "th", "tir": "ti", "tuk": "tk", "tur": "tr",
    "uig": "ug", "ukr": "uk", "urd": "ur", "uzb": "uz", "vie": "vi", "wln": "wa", "xho": "xh", "yid": "yi",
    "yor": "yo", "zho": "zh", "zul": "zu",
    # ISO 639-2/B variants that some tools still emit.
    "chi": "zh", "cze": "cs", "dut": "nl", "fre": "fr", "ger": "de", "gre": "el", "per": "fa", "rum": "ro",
    "slo": "sk", "alb": "sq", "arm": "hy", "baq": "eu", "bur": "my", "geo": "ka", "ice": "is", "mac": "mk",
    "may": "ms", "wel": "cy", "tib": "bo", "mao": "mi",
}  # fmt: skip

_ISO639_1 = frozenset(_ISO639_3_TO_1.values())


def first_language(header: str | None) -> str | None:
    """The two-letter code of the first language in a `WARC-Identified-Content-Language` value, or None."""
    if not header:
        return None
    first = header.split(",", 1)[0].strip().lower()
    if len(first) == 2:
        return first if first in _ISO639_1 else None
    return _ISO639_3_TO_1.get(first)
