"""Audit trail: every security event goes to the audit table and to the JSON log."""

import json
import logging

from idp.extensions import db
from idp.models import AuditEvent

log = logging.getLogger("idp.audit")


def record(tenant, event, user_id=None, client_id=None, ip=None, **detail):
    """Write one event; ``event`` is a stable dotted name, ``detail`` never holds secrets."""
    row = AuditEvent(
        tenant_id=tenant.id if tenant is not None else None,
        event=event,
        user_id=user_id,
        client_id=client_id,
        ip=ip,
        detail=detail,
    )
    db.session.add(row)
    db.session.commit()
    log.info(
        json.dumps(
            {
                "event": event,
                "tenant": getattr(tenant, "slug", None),
                "user_id": user_id,
                "client_id": client_id,
                "ip": ip,
                **detail,
            },
            default=str,
        )
    )
    return row
