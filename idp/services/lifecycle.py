"""Account lifecycle of the user guides: invite (or import weeks ahead), disable, enable,
delete, expire, reset the authenticator, resend the invitation.

Accounts are invitation-only. An invitation not activated within the tenant's
deadline (30 days by default) leaves the account deactivated "for security reasons".
Every change that takes access away also ends the user's sessions and revokes
their tokens, and is audited.
"""

import csv
import io
import time
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime

from flask import current_app

from idp.errors import ValidationFailed
from idp.extensions import db
from idp.services import audit
from idp.services import mail
from idp.services import recovery_codes
from idp.services import sessions
from idp.services import tokens
from idp.services import totp
from idp.services import users

DEFAULT_ACTIVATION_DAYS = 30


def activation_deadline(tenant, now=None):
    """When an invitation made now stops being usable."""
    days = int(tenant.settings.get("activation_days", DEFAULT_ACTIVATION_DAYS))
    return int(now or time.time()) + days * 86400


def parse_date(value):
    """An ISO date (end of that day, UTC) or datetime as Unix seconds; None for empty."""
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = value.isoformat()
    try:
        if len(str(value)) == 10:
            day = date.fromisoformat(str(value))
            moment = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(str(value))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise ValidationFailed(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return int(moment.timestamp())


def invite(tenant, email, name="", welcome_email=True, expires=None):
    """Create an invited account; mail the welcome message unless told not to."""
    user = users.create_user(tenant, email, name=name)
    user.activation_deadline = activation_deadline(tenant)
    user.access_expires_at = parse_date(expires)
    db.session.commit()
    audit.record(tenant, "user.invited", user_id=user.id, welcome_email=welcome_email)
    if welcome_email:
        send_invitation(tenant, user)
    return user


def send_invitation(tenant, user):
    """The welcome mail: the account exists; sign in with "First time login"."""
    mail.send_template(
        current_app.config,
        tenant,
        "invitation",
        user.email,
        sign_in_url=tenant.settings.get("app_url"),
        activate_by=datetime.fromtimestamp(user.activation_deadline, UTC).date().isoformat(),
    )


def resend_invitation(tenant, email):
    """A fresh deadline and a new welcome mail for an account not yet activated."""
    user = _require(tenant, email)
    if user.state != "invited":
        raise ValidationFailed(f"{user.email} is {user.state}, not invited")
    user.activation_deadline = activation_deadline(tenant)
    db.session.commit()
    audit.record(tenant, "user.invitation_resent", user_id=user.id)
    send_invitation(tenant, user)
    return user


@dataclass
class ImportReport:
    """What an import did: invited addresses, and refused lines with the reason."""

    invited: list = field(default_factory=list)
    refused: list = field(default_factory=list)


def import_csv(tenant, text, welcome_email=True):
    """Invite every row of a CSV with an ``email`` column (``name``, ``expires`` optional)."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        raise ValidationFailed("the CSV needs a header row with an 'email' column")
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        try:
            user = invite(
                tenant,
                row.get("email", ""),
                row.get("name", ""),
                welcome_email,
                row.get("expires") or None,
            )
        except ValidationFailed as exc:
            db.session.rollback()
            report.refused.append((line, row.get("email", ""), exc.message))
            continue
        report.invited.append(user.email)
    return report


def _require(tenant, email):
    user = users.find_user_by_email(tenant, email)
    if user is None:
        raise ValidationFailed(f"no user {email} in tenant {tenant.slug}")
    return user


def _cut_access(tenant, user):
    sessions.end_user_sessions(tenant, user.id)
    tokens.revoke_user_tokens(tenant, user.id)


def set_state(tenant, email, state):
    """disable / delete (access cut at once) or enable (back to active, or invited anew)."""
    user = _require(tenant, email)
    if state == "active" and not user.password_hash:
        state = "invited"
        user.activation_deadline = activation_deadline(tenant)
    user.state = state
    if state == "deleted":
        user.password_hash = None
        user.totp_secret = None
    db.session.commit()
    if state in ("disabled", "deleted"):
        _cut_access(tenant, user)
    audit.record(tenant, f"user.{state}", user_id=user.id)
    return user


def expire(tenant, email, when=None):
    """Set (or, with ``when`` None, end now) the access expiry date."""
    user = _require(tenant, email)
    user.access_expires_at = parse_date(when) if when else int(time.time())
    db.session.commit()
    if user.access_expires_at <= time.time():
        _cut_access(tenant, user)
    audit.record(tenant, "user.expiry_set", user_id=user.id, expires_at=user.access_expires_at)
    return user


def reset_mfa(tenant, email):
    """Admin reset: the authenticator and recovery codes go; the next sign-in enrols anew."""
    user = _require(tenant, email)
    totp.reset(tenant, user)
    recovery_codes.clear(tenant, user)
    _cut_access(tenant, user)
    audit.record(tenant, "totp.reset", user_id=user.id, by="admin")
    mail.send_template(current_app.config, tenant, "authenticator_changed", user.email)
    return user
