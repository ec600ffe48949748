"""Language of the pages: ``ui_locales`` from the authorization request, then Accept-Language.

Flask-Babel does the translating; English, Dutch, French and German are shipped, as
``idp/translations/<locale>/LC_MESSAGES/messages.po`` (see ``babel.cfg`` for extraction).
"""

import logging
import os
import tempfile

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app
from flask import g
from flask import has_app_context
from flask import has_request_context
from flask import request
from flask_babel import get_locale
from flask_babel import gettext
from flask_babel.speaklater import LazyString

log = logging.getLogger("idp.i18n")

SUPPORTED = ("en", "nl", "fr", "de")
DEFAULT_LOCALE = "en"
TRANSLATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "translations")


def select_locale():
    """OIDC Core §3.1.2.1: ``ui_locales`` is a preference list; fall back to the browser's.

    Outside a request (mail sent from the CLI) there is no browser to ask: English.
    """
    if not has_request_context():
        return DEFAULT_LOCALE
    for tag in (g.get("ui_locales") or "").split():
        if _base(tag) in SUPPORTED:
            return _base(tag)
    return _accepted_language() or DEFAULT_LOCALE


def _base(tag):
    """The language of a BCP 47 tag: "nl-BE" → "nl"."""
    return tag.replace("_", "-").split("-")[0].lower()


def _accepted_language():
    """RFC 9110 §12.5.4: the browser's most preferred language we have, any region.

    Werkzeug's ``best_match`` prefers an exact match of lower quality over a region of a
    higher one ("fr-BE, en;q=0.5" would be English), so regions are folded here instead.
    """
    for tag, quality in request.accept_languages:
        if quality > 0 and _base(tag) in SUPPORTED:
            return _base(tag)
    return None


def use_ui_locales(value):
    """Remember the relying party's ``ui_locales`` for this request's pages."""
    g.ui_locales = value or ""


def current_locale():
    """The locale of this request's pages as a tag ("nl"); English outside a request."""
    if not has_request_context():
        return DEFAULT_LOCALE
    return str(get_locale() or DEFAULT_LOCALE)


def lazy_gettext(string, **variables):
    """``flask_babel.lazy_gettext`` for module-level constants that also live outside idp.

    Password rules are rendered by bare Flask apps in tests and read by scripts; in an app
    without Flask-Babel the English text is used instead of failing on the missing extension.
    """
    return LazyString(_gettext_or_source, string, **variables)


def _gettext_or_source(string, **variables):
    if has_app_context() and "babel" not in current_app.extensions:
        return string % variables if variables else string
    return gettext(string, **variables)


def compile_catalogs(directory=TRANSLATIONS_DIR):
    """Compile each ``.po`` whose ``.mo`` is missing or older; called by ``create_app``.

    Why at start-up rather than in ``idp init``: the tests, ``flask run`` and a plain
    ``pip install -e .`` never run ``idp init``, and a catalogue edited after installation
    would otherwise be served stale. The check is one ``stat`` pair per language, so it
    costs nothing once compiled; ``make`` also compiles after installing. Each file is
    written to a temporary name and renamed, so gunicorn workers starting together never
    read half a catalogue. A read-only installation keeps what it has, with a warning.
    """
    if not os.path.isdir(directory):
        return []
    compiled = []
    for locale in sorted(os.listdir(directory)):
        po_path = os.path.join(directory, locale, "LC_MESSAGES", "messages.po")
        mo_path = po_path[:-3] + ".mo"
        if not os.path.isfile(po_path):
            continue
        if os.path.isfile(mo_path) and os.path.getmtime(mo_path) >= os.path.getmtime(po_path):
            continue
        try:
            _compile(po_path, mo_path, locale)
        except OSError as exc:
            log.warning("cannot compile %s: %s", po_path, exc)
            continue
        compiled.append(locale)
    return compiled


def _compile(po_path, mo_path, locale):
    with open(po_path, "rb") as handle:
        catalog = read_po(handle, locale=locale)
    fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(mo_path), suffix=".mo.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, mo_path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
