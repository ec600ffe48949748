"""Outgoing mail (DESIGN §1): SMTP in production, the console and an outbox folder otherwise.

Every mail has a plain-text and an HTML alternative (RFC 2046 §5.1.4) saying the same
thing, so it reads the same in any client. Mail is handed to the server during the
request that needs it: a code the user waits for is worth a second of latency, and a
failure surfaces as :class:`MailNotSent` instead of a silently lost code.
"""

import contextlib
import ipaddress
import logging
import os
import re
import smtplib
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from email.utils import make_msgid
from email.utils import parseaddr
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

from flask import render_template
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from idp.errors import IdpError
from idp.extensions import when_committed
from idp.i18n import current_locale

log = logging.getLogger("idp.mail")

# The subject of each template in templates/mail/; ``%(tenant)s`` is the tenant's name.
SUBJECTS = {
    "verification_code": _l("%(tenant)s account email verification code"),
    "invitation": _l("Your %(tenant)s account is ready"),
    "password_changed": _l("Your %(tenant)s password was changed"),
    "authenticator_changed": _l("Your %(tenant)s authenticator app was changed"),
}

DEFAULT_BRAND_COLOR = "#1f5fbf"
# Only a hex colour may reach a style attribute: a tenant setting must not smuggle CSS in.
HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
STARTTLS_MODES = ("auto", "required")
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


class MailNotSent(IdpError):
    """The SMTP server could not be reached or refused the message."""

    status_code = 503
    title = _l("The email could not be sent")
    message = _l("We could not send the email just now. Please try again in a few minutes.")
    error = "temporarily_unavailable"


def send(config, to, subject, text, html, sender_name=None):
    """Deliver one message by SMTP when ``SMTP_URL`` is set, else to the outbox; returns its id.

    ``sender_name`` becomes the From display name unless ``MAIL_FROM`` already has one,
    so recipients see whose sign-in the mail is about.
    """
    message = build_message(config, to, subject, text, html, sender_name)
    if config.get("SMTP_URL"):
        _send_smtp(config, message)
        log.info("mail sent by smtp to=%s subject=%r", to, subject)
    else:
        path = _write_outbox(config, message)
        log.info("mail kept in outbox to=%s subject=%r file=%s", to, subject, path)
    return message["Message-ID"]


def send_template(config, tenant, name, to, **context):
    """Render ``templates/mail/{name}.txt`` and ``.html`` in the tenant's branding and send them.

    Needs an app context (Flask's ``render_template``). ``minutes`` defaults to the
    email-code lifetime, so a mail never promises a validity the server does not keep.
    The mail speaks the language of the pages of the request that sends it; outside a
    request (the CLI) no language is known and it is English.
    """
    subject, text, html = render(config, tenant, name, to, **context)
    return send(config, to, subject, text, html, sender_name=tenant.name)


def render(config, tenant, name, to, **context):
    """``(subject, text, html)`` of a templated mail, in the request's language."""
    with force_locale(current_locale()):
        subject = str(SUBJECTS[name]) % {"tenant": tenant.name}
        context = {**branding(tenant), "subject": subject, "email": to, **context}
        context.setdefault("minutes", max(1, int(config.get("EMAIL_CODE_TTL", 300)) // 60))
        text = render_template(f"mail/{name}.txt", **context)
        html = render_template(f"mail/{name}.html", **context)
    return subject, text, html


_background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="idp-mail")


def send_in_background(config, to, subject, text, html, sender_name=None):
    """Deliver after the response: the answer's timing must not tell whether a mail went out.

    Queued once the request's writes are committed (the code in it must already work).
    A failure is logged (the user can ask for a new code); nothing waits for it.
    """

    settings = dict(config)  # as they are now: the request (and its app context) ends first

    def deliver():
        try:
            send(settings, to, subject, text, html, sender_name)
        except MailNotSent:
            log.error("background mail to=%s subject=%r failed", to, subject)

    def submit():
        future = _background.submit(deliver)
        _pending.add(future)
        future.add_done_callback(_pending.discard)

    when_committed(submit)


_pending = set()


def drain(timeout=10):
    """Wait for background deliveries in flight (process shutdown, tests closing a server)."""
    futures_wait(list(_pending), timeout=timeout)


def branding(tenant):
    """Name, colour and logo of the tenant, with unsafe values replaced by the defaults."""
    settings = tenant.settings or {}
    color = str(settings.get("brand_color") or "")
    logo = str(settings.get("logo_url") or "")
    return {
        "tenant_name": tenant.name,
        "brand_color": color if HEX_COLOR.match(color) else DEFAULT_BRAND_COLOR,
        "logo_url": logo if logo.startswith("https://") else None,
    }


def build_message(config, to, subject, text, html, sender_name=None):
    """A MIME ``multipart/alternative`` message: text first, HTML preferred by clients."""
    message = EmailMessage()
    sender = _sender(config["MAIL_FROM"], sender_name)
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.domain or "localhost")
    # RFC 3834 §5: vacation responders and ticket systems must not answer machine mail.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _sender(mail_from, sender_name):
    """``MAIL_FROM`` as an Address, named after the tenant unless it carries a name itself."""
    name, addr = parseaddr(mail_from)
    return Address(display_name=name or sender_name or "", addr_spec=addr)


def _send_smtp(config, message):
    """Hand ``message`` to the server of ``SMTP_URL``; any network or SMTP failure → MailNotSent."""
    url = urlsplit(config["SMTP_URL"])
    mode = parse_qs(url.query).get("starttls", ["auto"])[-1]
    if url.scheme not in DEFAULT_PORTS or mode not in STARTTLS_MODES:
        raise ValueError("SMTP_URL must be smtp:// or smtps:// with starttls=auto|required")
    host, port = url.hostname, url.port or DEFAULT_PORTS[url.scheme]
    user, password = unquote(url.username or ""), unquote(url.password or "")
    timeout = config.get("SMTP_TIMEOUT") or 10
    context = tls_context(config)
    try:
        if url.scheme == "smtps":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        try:
            if url.scheme == "smtp":
                # Credentials never cross the network in clear, whatever the URL asked for.
                required = mode == "required" or (bool(user) and not _is_loopback(host))
                _starttls(client, context, required)
            if user:
                client.login(user, password)
            client.send_message(message)
            # The server has the message: a failed goodbye must not make us report a loss.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
        finally:
            client.close()
    except (smtplib.SMTPException, OSError) as exc:
        log.error("smtp delivery via %s:%s failed: %s: %.200s", host, port, type(exc).__name__, exc)
        raise MailNotSent() from exc


def _starttls(client, context, required):
    """RFC 3207: upgrade when the server offers it; refuse to go on in clear when required."""
    client.ehlo()
    if client.has_extn("starttls"):
        client.starttls(context=context)
    elif required:
        raise smtplib.SMTPNotSupportedError("the SMTP server does not offer STARTTLS")


def tls_context(config):
    """A verifying client context: the CAs of ``SMTP_CA_FILE``, else the system trust store."""
    return ssl.create_default_context(cafile=config.get("SMTP_CA_FILE") or None)


def _is_loopback(host):
    """A relay on this machine: nothing on the wire to protect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def outbox_dir(config):
    """The folder of the console backend: ``OUTBOX_DIR``, else ``{INSTANCE_DIR}/outbox``."""
    return config.get("OUTBOX_DIR") or os.path.join(
        config.get("INSTANCE_DIR") or "instance", "outbox"
    )


def _write_outbox(config, message):
    """Save ``message`` as an ``.eml`` file any mail client opens; private, as it holds codes."""
    folder = outbox_dir(config)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = os.path.join(folder, f"{stamp}-{uuid.uuid4().hex[:12]}.eml")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(message.as_bytes())
    return path
