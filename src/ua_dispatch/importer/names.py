"""Country and language names in the documents' languages, to ISO codes and back.

Names come from pycountry (ISO 3166 and ISO 639 with their translations) and from the
``countries`` tables of ``labels/``, which add the short forms written on envelopes.
"""

from __future__ import annotations

import gettext
import re
from functools import cache

import pycountry

from ua_dispatch.importer.labels import fold, tables

_PUNCT = re.compile(r"[^\w' -]+")


def _key(name: str) -> str:
    return " ".join(_PUNCT.sub(" ", fold(name)).split())


@cache
def _translations(domain: str) -> list[gettext.NullTranslations]:
    out: list[gettext.NullTranslations] = []
    for t in tables():
        if t.language == "en":
            continue
        try:
            out.append(gettext.translation(domain, pycountry.LOCALES_DIR, languages=[t.language]))
        except OSError:
            continue
    return out


@cache
def _countries() -> dict[str, str]:
    index: dict[str, str] = {}
    translations = _translations("iso3166-1")
    for country in pycountry.countries:
        code = country.alpha_2
        for attr in ("name", "official_name", "common_name"):
            name = getattr(country, attr, None)
            if isinstance(name, str):
                index.setdefault(_key(name), code)
                for tr in translations:
                    index.setdefault(_key(tr.gettext(name)), code)
    for t in tables():
        for name, code in t.aliases.items():
            index[_key(name)] = code
        for code, name in t.postal.items():
            index[_key(name)] = code
    return index


def country_code(name: str) -> str | None:
    """``"Russian Federation"`` → ``"RU"``; None when the text is no country's name."""
    key = _key(name)
    if not key:
        return None
    code = _countries().get(key)
    if code is None and name.strip().isupper() and len(name.strip()) == 3:
        found = pycountry.countries.get(alpha_3=name.strip())
        code = found.alpha_2 if found is not None else None
    return code


def alpha3(code: str) -> str:
    found = pycountry.countries.get(alpha_2=code)
    return str(found.alpha_3) if found is not None else code


def country_name(code: str, language: str) -> str:
    """The country's name as an address or a title in ``language`` writes it."""
    for t in tables():
        if t.language == language and code in t.postal:
            return t.postal[code]
    found = pycountry.countries.get(alpha_2=code)
    if found is None:
        return code
    name = str(getattr(found, "common_name", None) or found.name)
    if language != "en":
        for tr in _translations("iso3166-1"):
            if tr.info().get("language", "").startswith(language):
                return tr.gettext(name)
    return name


@cache
def _languages() -> dict[str, str]:
    index: dict[str, str] = {}
    translations = _translations("iso639-3")
    for lang in pycountry.languages:
        code = getattr(lang, "alpha_2", None)
        if not isinstance(code, str):
            continue
        names = [lang.name, *(tr.gettext(lang.name) for tr in translations)]
        for name in names:
            for part in name.split(";"):
                index.setdefault(_key(part.split("(")[0]), code)
    return index


def language_code(name: str) -> str | None:
    """``"RUSSIAN"``, ``"ruso"``, ``"anglais"`` → ISO 639-1 code; None when unknown."""
    key = _key(name)
    return _languages().get(key) if key else None
