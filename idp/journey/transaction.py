"""Login transactions: server-side, single use, bound to the browser by an opaque id.

An unknown, expired or foreign id ends on one clean "start again" page.
"""

import hashlib
import secrets
import time

from flask import current_app
from flask import request
from sqlalchemy import delete

from idp.errors import JourneyExpired
from idp.extensions import db
from idp.journey import cookies
from idp.models import LoginTransaction


def _key(raw_id):
    return hashlib.sha256(raw_id.encode()).hexdigest()


def start_transaction(tenant, params, interaction, signed_in=None):
    """A new transaction for an authorization request; returns ``(row, raw_id)``.

    ``signed_in`` is the browser's current user, for ``prompt=select_account``.
    """
    raw_id = secrets.token_urlsafe(32)
    now = int(time.time())
    row = LoginTransaction(
        id=_key(raw_id),
        tenant_id=tenant.id,
        params={"pairs": [list(p) for p in params]},
        data={"reason": interaction.reason, "prompt": interaction.prompt, "signed_in": signed_in},
        created_at=now,
        expires_at=now + current_app.config["LOGIN_TX_TTL"],
    )
    db.session.add(row)
    db.session.commit()
    return row, raw_id


def find_transaction(tenant):
    """This browser's live transaction, or None."""
    raw_id = cookies.read_tx_cookie(request)
    if not raw_id:
        return None
    row = db.session.get(LoginTransaction, _key(raw_id))
    if row is None or row.tenant_id != tenant.id or row.expires_at <= time.time():
        return None
    return row


def load_transaction(tenant):
    """This browser's live transaction; JourneyExpired otherwise."""
    row = find_transaction(tenant)
    if row is None:
        raise JourneyExpired()
    return row


def update_transaction(row, **changes):
    """Merge ``changes`` into the transaction's data and persist."""
    row.data = {**row.data, **changes}
    db.session.commit()


def finish_transaction(row):
    """Destroy the transaction: it cannot be replayed (single use)."""
    db.session.execute(delete(LoginTransaction).where(LoginTransaction.id == row.id))
    db.session.commit()


def stored_params(row):
    """The authorization request's parameters, as (name, value) pairs in order."""
    return [tuple(p) for p in row.params.get("pairs", [])]
