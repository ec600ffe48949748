"""Every page: strict CSP without inline script or style, no framing, no referrer, no caching."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_sign_in_page_headers(realm, browser):
    url, _, _ = realm.authorize_url()
    page = browser.follow(browser.get(url), "https://rp.example/cb")
    headers = page.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert 'name="csrf_token"' in page.text


def test_sign_in_form_without_csrf_token_is_refused(realm, browser):
    url, _, _ = realm.authorize_url()
    page = browser.follow(browser.get(url), "https://rp.example/cb")
    response = browser.http.post(
        page.url, data={"step": "identify", "email": realm.email}, allow_redirects=False
    )
    assert response.status_code == 400 and "expired" in response.text


def test_templates_have_no_inline_script_or_style():
    for path in (ROOT / "templates").rglob("*.html"):
        if path.parent.name == "mail":
            continue  # mail clients need inline styles; CSP governs pages, not mail
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline script in {path}"
        assert "style=" not in text and "<style" not in text, f"inline style in {path}"
        assert not re.search(r"\son[a-z]+=", text), f"inline event handler in {path}"


def test_post_redirects_are_303(realm, browser):
    url, _, _ = realm.authorize_url()
    page = browser.follow(browser.get(url), "https://rp.example/cb")
    assert browser.submit(page, {"email": realm.email}).status_code == 303


def test_expired_transaction_gets_a_clean_start_again_page(realm, browser):
    response = browser.get(f"{realm.issuer}/login")
    assert response.status_code == 400
    assert "start again" in response.text.lower()
