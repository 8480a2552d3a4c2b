"""The translation catalogue: every word this project adds to a reader's page or mail.

English is the source: the wording tables (`mirror.build.render.MESSAGES`,
`mirror.digest.compose.MESSAGES`, `mirror.mailin.replies.MESSAGES`) hold English msgids
marked with `N_` (or `NC_` when one English text needs two translations, `NP_` for
plural forms), and the edition templates mark their text with `{% trans %}`. The other
languages' catalogues are gettext `.po` files shipped in the package
(`mirror/locale/<lang>/LC_MESSAGES/mirror.po`), compiled in memory on first use;
`pybabel extract -F babel.cfg` with `KEYWORDS` finds every msgid (README, Development).

Pure apart from reading the package's own `.po` files once.
"""

from __future__ import annotations

import functools
import gettext
import importlib.resources
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from mirror.build.locale import base_language

DOMAIN = "mirror"
SOURCE_LANGUAGE = "en"
# The extraction keywords of the markers below, in babel's form (pybabel's -k option:
# N_ NP_:1,2 NC_:1c,2); gettext and ngettext are jinja2's ({% trans %}, _()).
KEYWORDS: dict[str, Any] = {
    "N_": None,
    "NP_": (1, 2),
    "NC_": ((1, "c"), 2),
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
}


@dataclass(frozen=True)
class InContext:
    """An English text whose translation depends on where it is used (msgctxt)."""

    context: str
    message: str


@dataclass(frozen=True)
class Plural:
    """An English text with a singular and a plural form ("{n} new article(s)")."""

    singular: str
    plural: str


def N_(message: str) -> str:
    """Mark `message` for the catalogue; it is translated where it is shown."""
    return message


def NC_(context: str, message: str) -> InContext:
    """Mark `message`, used in `context`, for the catalogue."""
    return InContext(context, message)


def NP_(singular: str, plural: str) -> Plural:
    """Mark a text with plural forms for the catalogue."""
    return Plural(singular, plural)


def locale_root() -> Traversable:
    """The package's folder of catalogues, `<lang>/LC_MESSAGES/mirror.po` each."""
    return importlib.resources.files("mirror").joinpath("locale")


def catalogue_path(language: str) -> Traversable:
    """Where the `.po` file of `language` (a base language, "ru") is in the package."""
    return locale_root().joinpath(language, "LC_MESSAGES", f"{DOMAIN}.po")


def has_catalogue(language: str) -> bool:
    """Whether the words of `language` exist (English always does)."""
    base = base_language(language)
    return base == SOURCE_LANGUAGE or catalogue_path(base).is_file()


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The translations of `language`'s base language; English (none) without a `.po`."""
    base = base_language(language)
    if base == SOURCE_LANGUAGE or not catalogue_path(base).is_file():
        return gettext.NullTranslations()
    with catalogue_path(base).open("rb") as po:
        catalog = read_po(po, locale=base, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries stay out, as msgfmt leaves them
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def translate(message: str | InContext, language: str) -> str:
    """One marked text in `language`."""
    words = translations(language)
    if isinstance(message, InContext):
        return words.pgettext(message.context, message.message)
    return words.gettext(message)


def count_words(plural: Plural, count: int, language: str) -> str:
    """`plural` for `count`, in the form `language` uses for it, `{n}` filled in."""
    return translations(language).ngettext(plural.singular, plural.plural, count).format(n=count)


def wording(table: Mapping[str, str | InContext | Plural], language: str) -> dict[str, Any]:
    """A wording table with every text in `language` (plural texts stay `Plural`)."""
    return {
        key: message if isinstance(message, Plural) else translate(message, language)
        for key, message in table.items()
    }
