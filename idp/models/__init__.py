"""SQLAlchemy models, one module per aggregate. Every row except a tenant's carries tenant_id.

Timestamps are integer Unix seconds: the same on SQLite and PostgreSQL, and what
JWT claims use anyway.
"""

from idp.models.audit import AuditEvent
from idp.models.client import Client
from idp.models.client import InitialAccessToken
from idp.models.consent import Consent
from idp.models.credential import EmailCode
from idp.models.credential import RecoveryCode
from idp.models.grant import AuthorizationCode
from idp.models.grant import Token
from idp.models.grant import UsedAssertion
from idp.models.session import LoginTransaction
from idp.models.session import SsoSession
from idp.models.tenant import Tenant
from idp.models.upstream import FederatedIdentity
from idp.models.upstream import UpstreamIdp
from idp.models.user import User

__all__ = [
    "AuditEvent",
    "AuthorizationCode",
    "Client",
    "Consent",
    "EmailCode",
    "FederatedIdentity",
    "InitialAccessToken",
    "LoginTransaction",
    "RecoveryCode",
    "SsoSession",
    "Tenant",
    "Token",
    "UpstreamIdp",
    "UsedAssertion",
    "User",
]
