"""Languages of the hosted sign-in: ``ui_locales`` first, then Accept-Language, then English.

Pages, messages and mail come from the Flask-Babel catalogues in idp/translations; the
last tests check the catalogues themselves: complete against the source, never fuzzy,
every placeholder kept, and compiled again at start-up when a ``.po`` is newer.
"""

import os
import pathlib
import re
import shutil

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.support import Translations

from idp.i18n import compile_catalogs
from tests.integration.journey import Journey
from tests.integration.realm import REDIRECT_URI
from tests.integration.realm import Realm

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "idp" / "translations"
LOCALES = ("nl", "fr", "de")
KEYWORDS = ("_", "gettext", "ngettext", "lazy_gettext", "_l")

# The email field's label and the password field's label, as each language shows them.
EMAIL_LABEL = {
    "en": "Email address",
    "nl": "E-mailadres",
    "fr": "Adresse e-mail",
    "de": "E-Mail-Adresse",
}
PASSWORD_LABEL = {"en": "Password", "nl": "Wachtwoord", "fr": "Mot de passe", "de": "Passwort"}
PLACEHOLDER = re.compile(r"%\(\w+\)[a-z]")


@pytest.fixture
def realm(server, factory, browser):
    """A tenant, client and active user, as the relying party sees them."""
    return Realm(server, factory, browser)


def email_page(realm, browser, accept_language=None, **params):
    """Open an authorization request; returns the journey's first page (the email step)."""
    if accept_language:
        browser.http.headers["Accept-Language"] = accept_language
    url, _, _ = realm.authorize_url(**params)
    page = browser.follow(browser.get(url), REDIRECT_URI)
    assert page.status_code == 200 and 'value="identify"' in page.text, page.text[:500]
    return page


def assert_email_page_in(page, lang):
    """The page declares ``lang`` and labels the email field in it."""
    assert f'<html lang="{lang}">' in page.text
    assert f'<label for="email">{EMAIL_LABEL[lang]}</label>' in page.text


# --- choosing the language ------------------------------------------------------------------


@pytest.mark.parametrize("lang", LOCALES)
def test_ui_locales_chooses_the_language(realm, browser, lang):
    assert_email_page_in(email_page(realm, browser, ui_locales=lang), lang)


@pytest.mark.parametrize(
    "header, lang",
    [
        ("nl-BE,nl;q=0.9,en;q=0.5", "nl"),
        ("fr-BE,en-US;q=0.7,en;q=0.3", "fr"),  # a region we do not ship still counts
        ("de-CH, en;q=0.5", "de"),
        ("en-GB,nl;q=0.8", "en"),
    ],
)
def test_accept_language_when_no_ui_locales(realm, browser, header, lang):
    assert_email_page_in(email_page(realm, browser, accept_language=header), lang)


def test_ui_locales_wins_over_accept_language(realm, browser):
    page = email_page(realm, browser, accept_language="fr-FR,fr;q=0.9", ui_locales="de")
    assert_email_page_in(page, "de")


def test_first_supported_ui_locale_wins(realm, browser):
    page = email_page(realm, browser, accept_language="de", ui_locales="es nl-BE fr")
    assert_email_page_in(page, "nl")


def test_unknown_locales_fall_back_to_english(realm, browser):
    page = email_page(realm, browser, accept_language="pt-BR,ja;q=0.5", ui_locales="es it")
    assert_email_page_in(page, "en")
    assert "<h1>Sign in</h1>" in page.text


# --- the language stays with the sign-in ----------------------------------------------------


def test_language_stays_for_the_next_steps(realm, browser):
    """The POSTs carry no ``ui_locales``: the transaction keeps it for every later page."""
    journey = Journey(realm, browser).start(ui_locales="nl")
    journey.expect("identify").submit({"email": realm.email}).expect("password")
    page = journey.page
    assert '<html lang="nl">' in page.text
    assert f'<label for="password">{PASSWORD_LABEL["nl"]}</label>' in page.text
    assert "Eerste keer aanmelden / Wachtwoord vergeten?" in page.text
    journey.submit({"password": "not-the-password"}).expect("password")
    assert "Ongeldige combinatie van e-mailadres en wachtwoord." in journey.page.text


def test_verification_mail_speaks_the_language_of_the_pages(
    app, realm, browser, smtp_server, monkeypatch
):
    monkeypatch.setitem(app.config, "SMTP_URL", smtp_server.url)
    journey = Journey(realm, browser).start(ui_locales="fr")
    journey.submit({"email": realm.email}).action("recover").expect("send_code")
    assert "Envoyer le code de vérification" in journey.page.text
    journey.submit().expect("verify_code")
    message = smtp_server.wait_for_message(realm.email)
    assert message["Subject"] == "Code de vérification de l’adresse e-mail de votre compte Test Org"
    text = " ".join(message.get_body(("plain",)).get_content().split())
    html = message.get_body(("html",)).get_content()
    assert "Vérifiez votre adresse e-mail" in text
    assert "Le code est valable 5 minutes." in text
    assert "Cordialement," in text and "Sincerely" not in text
    assert '<html lang="fr">' in html


def test_error_pages_follow_the_browser(server, factory, browser):
    """No transaction, so no ``ui_locales``: the expired-journey page uses Accept-Language."""
    tenant = factory.tenant()
    response = browser.get(f"{server.issuer(tenant)}/login", headers={"Accept-Language": "de"})
    assert response.status_code == 400
    assert '<html lang="de">' in response.text
    assert "Ihre Anmeldung ist abgelaufen" in response.text


def test_logout_page_takes_ui_locales(server, factory, browser):
    """RP-Initiated Logout 1.0 §2 has its own ``ui_locales``."""
    tenant = factory.tenant()
    response = browser.get(f"{server.issuer(tenant)}/logout", params={"ui_locales": "nl"})
    assert response.status_code == 200
    assert '<html lang="nl">' in response.text and "U bent afgemeld" in response.text


def test_program_facing_errors_stay_english(server, browser):
    """RFC 6749 §5.2: ``error_description`` is ASCII, so JSON answers ignore the browser."""
    response = browser.get(f"{server.url}/no-such-tenant/jwks", headers={"Accept-Language": "fr"})
    assert response.status_code == 404
    assert response.json()["error_description"].startswith("This address does not belong")
    page = browser.get(f"{server.url}/no-such-tenant/login", headers={"Accept-Language": "fr"})
    assert "Cette adresse n’appartient à aucune organisation." in page.text


# --- the catalogues ------------------------------------------------------------------------


def source_messages():
    """Every msgid in the code and templates now, extracted as babel.cfg says."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found = extract_from_dir(str(ROOT), method_map, options_map, keywords=dict.fromkeys(KEYWORDS))
    return {message if isinstance(message, str) else message[0] for _, _, message, *_ in found}


def catalog(lang):
    """The ``.po`` catalogue of ``lang``."""
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=lang)


def placeholders(text):
    """The ``%(name)s``-style placeholders of a message, with their conversion."""
    return set(PLACEHOLDER.findall(text))


@pytest.mark.parametrize("lang", LOCALES)
def test_catalogue_is_complete_and_not_fuzzy(lang):
    messages = [m for m in catalog(lang) if m.id]
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in messages}
    missing = source_messages() - translated
    assert not missing, f"run pybabel extract/update and translate: {sorted(missing)}"
    for message in messages:
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(forms), f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"


@pytest.mark.parametrize("lang", LOCALES)
def test_translations_keep_every_placeholder(lang):
    for message in catalog(lang):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = set().union(*(placeholders(i) for i in ids))
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        for form in forms:
            assert placeholders(form) == expected, f"{lang}: {ids[0]!r} → {form!r}"
            # Templates output translations as markup: no HTML may creep in.
            assert not set("<>&") & (set(form) - set("".join(ids))), form


def test_catalogues_compile_at_start_when_stale(tmp_path):
    shutil.copytree(TRANSLATIONS / "nl", tmp_path / "nl")
    for stale in (tmp_path / "nl" / "LC_MESSAGES").glob("*.mo"):
        stale.unlink()
    po = tmp_path / "nl" / "LC_MESSAGES" / "messages.po"
    assert compile_catalogs(str(tmp_path)) == ["nl"]
    assert compile_catalogs(str(tmp_path)) == []  # fresh: nothing to do
    mo_time = po.with_suffix(".mo").stat().st_mtime
    os.utime(po, (mo_time + 10, mo_time + 10))
    assert compile_catalogs(str(tmp_path)) == ["nl"]
    translations = Translations.load(str(tmp_path), ["nl"])
    assert translations.gettext("Email address") == "E-mailadres"
