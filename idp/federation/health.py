"""``idp upstream test``: find a misconfiguration before a user meets it.

Fetches discovery (its issuer must be the configured one) and the JWKS, then
checks the client credentials without any user: a code that cannot exist is sent
to the token endpoint — known credentials get ``invalid_grant``, wrong ones
``invalid_client``.
"""

from dataclasses import dataclass
from dataclasses import field

from idp.federation.outbound import OutboundError
from idp.federation.outbound import get_json
from idp.federation.outbound import post_form
from idp.federation.upstream_client import FederationError
from idp.federation.upstream_client import metadata
from idp.services import crypto


@dataclass
class Report:
    """One line per check; ``ok`` when every check passed."""

    checks: list = field(default_factory=list)

    @property
    def ok(self):
        """Every check passed."""
        return all(passed for _, passed, _ in self.checks)

    def add(self, name, passed, detail=""):
        """Record one check."""
        self.checks.append((name, passed, detail))


def check(upstream, redirect_uri):
    """Run every check against the live upstream."""
    report = Report()
    try:
        document = metadata(upstream)
    except FederationError as exc:
        report.add("discovery", False, exc.cause)
        return report
    report.add("discovery", True, f"issuer {document['issuer']}")
    try:
        keys = get_json(document["jwks_uri"], upstream.allow_private_network).get("keys") or []
        report.add("jwks", bool(keys), f"{len(keys)} keys")
    except OutboundError as exc:
        report.add("jwks", False, str(exc))
    report.add(
        "pkce",
        "S256" in (document.get("code_challenge_methods_supported") or ["S256"]),
        "S256 offered" if document.get("code_challenge_methods_supported") else "not said",
    )
    secret = crypto.decrypt(upstream.client_secret) if upstream.client_secret else None
    data = {
        "grant_type": "authorization_code",
        "code": "idp-upstream-test-no-such-code",
        "redirect_uri": redirect_uri,
        "code_verifier": "x" * 43,
    }
    try:
        status, body = post_form(
            document["token_endpoint"],
            data,
            (upstream.client_id, secret) if secret else None,
            upstream.allow_private_network,
        )
    except OutboundError as exc:
        report.add("credentials", False, str(exc))
        return report
    error = body.get("error")
    report.add(
        "credentials",
        error == "invalid_grant",
        "accepted" if error == "invalid_grant" else f"{status} {error or 'no error code'}",
    )
    return report
