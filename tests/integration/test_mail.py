"""Mail through a real SMTP server (aiosmtpd on loopback) and through the outbox folder."""

import email
import email.policy
import os
import stat
import uuid

import pytest

from idp.services import email_codes
from idp.services import mail
from idp.services import tenants
from tests.smtp import accept_login
from tests.smtp import extract_code
from tests.smtp import free_port
from tests.smtp import make_tls_files
from tests.smtp import running_smtp_server
from tests.smtp import server_tls_context


@pytest.fixture
def tenant(app):
    """A branded tenant, inside an app context for the whole test (templates need one)."""
    settings = {"brand_color": "#0a7d4f", "logo_url": "https://cdn.example/logo.png"}
    with app.app_context():
        yield tenants.create_tenant(
            f"t-{uuid.uuid4().hex[:10]}", "Fluxys Extranet Identity Provider", settings=settings
        )


@pytest.fixture
def address():
    return f"john.doe-{uuid.uuid4().hex[:8]}@imaginary-energies.example"


@pytest.fixture
def tls_files(tmp_path):
    """(ca_file, cert_file, key_file) of a throw-away CA and a 127.0.0.1 certificate."""
    return make_tls_files(tmp_path)


def smtp_config(app, url, **settings):
    """The app's settings, sending through ``url``."""
    return {**app.config, "SMTP_URL": url, **settings}


def parts(message):
    """(text, html) bodies of a multipart/alternative mail, runs of white space made one space.

    The text part is wrapped at 76 columns, so a phrase may span a line break.
    """
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return " ".join(text.split()), " ".join(html.split())


def test_verification_code_mail_is_delivered(app, tenant, address, smtp_server):
    issued = email_codes.issue(tenant, address, "recover")
    config = smtp_config(app, smtp_server.url, MAIL_FROM="no-reply@idp.example")

    mail.send_template(config, tenant, "verification_code", address, code=issued.code)

    delivery = smtp_server.wait_for_delivery(address)
    message = delivery.message
    assert delivery.mail_from == "no-reply@idp.example"
    assert message["Subject"] == "Fluxys Extranet Identity Provider account email verification code"
    assert message["From"] == "Fluxys Extranet Identity Provider <no-reply@idp.example>"
    assert message["To"] == address
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    for body in (text, html):
        assert "Verify your email address" in body
        assert issued.code in body
        assert "Fluxys Extranet Identity Provider" in body
        assert "valid for 5 minutes" in body
        assert "unmonitored email address" in body
    assert "Your code is: " + issued.code in text
    assert message.get_body(("plain",))["Content-Transfer-Encoding"] == "7bit"  # readable as is
    assert "#0a7d4f" in html and 'src="https://cdn.example/logo.png"' in html
    code = extract_code(message)
    assert email_codes.verify(tenant, address, "recover", code) == "ok"


def test_starttls_is_used_when_offered(app, tenant, address, tls_files):
    ca_file, cert_file, key_file = tls_files
    context = server_tls_context(cert_file, key_file)
    with running_smtp_server(tls_context=context) as server:
        config = smtp_config(app, server.url, SMTP_CA_FILE=ca_file)
        mail.send(config, address, "Hello", "text", "<p>html</p>")

        assert server.wait_for_delivery(address).tls


def test_starttls_required_with_login(app, tenant, address, tls_files):
    ca_file, cert_file, key_file = tls_files
    context = server_tls_context(cert_file, key_file)
    options = {
        "tls_context": context,
        "require_starttls": True,
        "auth_required": True,
        "authenticator": accept_login("mailer", "p@ss word"),
    }
    with running_smtp_server(**options) as server:
        url = f"smtp://mailer:p%40ss%20word@{server.host}:{server.port}?starttls=required"
        config = smtp_config(app, url, SMTP_CA_FILE=ca_file)

        mail.send_template(config, tenant, "verification_code", address, code="488741")

        delivery = server.wait_for_delivery(address)
    assert delivery.tls and delivery.login == "mailer"
    assert extract_code(delivery.message) == "488741"


def test_untrusted_certificate_is_refused(app, tenant, address, tls_files):
    _, cert_file, key_file = tls_files
    context = server_tls_context(cert_file, key_file)
    with running_smtp_server(tls_context=context, require_starttls=True) as server:
        config = smtp_config(app, server.url + "?starttls=required")  # system trust store

        with pytest.raises(mail.MailNotSent):
            mail.send(config, address, "Hello", "text", "<p>html</p>")

        assert server.deliveries == []


def test_required_starttls_not_offered_sends_nothing(app, address, smtp_server):
    config = smtp_config(app, smtp_server.url + "?starttls=required")

    with pytest.raises(mail.MailNotSent):
        mail.send(config, address, "Hello", "text", "<p>html</p>")

    assert smtp_server.deliveries == []


def test_implicit_tls(app, tenant, address, tls_files):
    ca_file, cert_file, key_file = tls_files
    with running_smtp_server(ssl_context=server_tls_context(cert_file, key_file)) as server:
        config = smtp_config(app, server.url, SMTP_CA_FILE=ca_file)
        assert server.url.startswith("smtps://")

        mail.send_template(config, tenant, "password_changed", address)

        assert server.wait_for_delivery(address).tls


def test_unreachable_server_is_a_mail_error(app, address):
    config = smtp_config(app, f"smtp://127.0.0.1:{free_port()}", SMTP_TIMEOUT=2)

    with pytest.raises(mail.MailNotSent):
        mail.send(config, address, "Hello", "text", "<p>html</p>")


def test_outbox_writes_a_readable_eml(app, tenant, address, tmp_path):
    config = {**app.config, "SMTP_URL": "", "OUTBOX_DIR": str(tmp_path / "outbox")}
    sign_in_url = f"https://idp.example/{tenant.slug}/account"

    message_id = mail.send_template(
        config, tenant, "invitation", address, sign_in_url=sign_in_url, activate_by="31 March"
    )

    (name,) = os.listdir(tmp_path / "outbox")
    path = tmp_path / "outbox" / name
    assert name.endswith(".eml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["Message-ID"] == message_id
    assert message["To"] == address
    assert message["Subject"] == "Your Fluxys Extranet Identity Provider account is ready"
    for body in parts(message):
        assert sign_in_url in body and address in body
        assert "First time login" in body and "31 March" in body


def test_outbox_defaults_to_the_instance_folder(app, address, tmp_path):
    config = {**app.config, "SMTP_URL": "", "OUTBOX_DIR": "", "INSTANCE_DIR": str(tmp_path)}

    mail.send(config, address, "Hello", "text", "<p>html</p>")

    assert len(os.listdir(tmp_path / "outbox")) == 1


@pytest.mark.parametrize(
    ("name", "phrases"),
    [
        ("verification_code", ["Your code is:", "123456", "valid for 5 minutes"]),
        ("invitation", ["Welcome to", "https://idp.example/start", "First time login"]),
        ("password_changed", ["password", "If this was not you", "contact your administrator"]),
        ("authenticator_changed", ["authenticator", "If this was not you", "your administrator"]),
    ],
)
def test_text_and_html_say_the_same(app, tenant, address, tmp_path, name, phrases):
    config = {**app.config, "SMTP_URL": "", "OUTBOX_DIR": str(tmp_path)}
    context = {"code": "123456", "sign_in_url": "https://idp.example/start"}

    mail.send_template(config, tenant, name, address, **context)

    (path,) = tmp_path.iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    for body in parts(message):
        for phrase in [*phrases, "Fluxys Extranet Identity Provider", "unmonitored"]:
            assert phrase in body, (name, phrase)


def test_unsafe_branding_falls_back_to_the_defaults(app, address, tmp_path):
    settings = {"brand_color": "red;background:url(https://evil.example)", "logo_url": "http://x"}
    config = {**app.config, "SMTP_URL": "", "OUTBOX_DIR": str(tmp_path)}
    with app.app_context():
        tenant = tenants.create_tenant(f"t-{uuid.uuid4().hex[:10]}", "Org", settings=settings)
        mail.send_template(config, tenant, "password_changed", address)

    (path,) = tmp_path.iterdir()
    html = parts(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))[1]
    assert "evil.example" not in html and "<img" not in html
    assert mail.DEFAULT_BRAND_COLOR in html
