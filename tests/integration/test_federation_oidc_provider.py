"""Federation to npm ``oidc-provider`` (an OpenID Certified OP) as the upstream IdP.

Sign-in with JIT provisioning and with a pre-provisioned user both end with tokens
at the relying party; the upstream's ``access_denied`` and a wrong client secret
get their Flexopus messages; ``idp upstream test`` reports the same misconfiguration
before any user meets it.
"""

import json

import pytest

from idp.federation import registry
from idp.services import tenants
from tests.integration.journey import Authenticator
from tests.integration.journey import Journey
from tests.integration.realm import REDIRECT_URI
from tests.integration.realm import Realm
from tests.integration.test_code_flow import decode_id_token
from tests.upstream import DEFAULT_CLIENT_ID
from tests.upstream import DEFAULT_CLIENT_SECRET
from tests.upstream import DEFAULT_PASSWORD
from tests.upstream import deny_at_upstream
from tests.upstream import make_upstream  # noqa: F401
from tests.upstream import sign_in_upstream

pytestmark = pytest.mark.node
DOMAIN = "upstream.example"


@pytest.fixture
def realm(server, factory, browser):
    return Realm(server, factory, browser)


def federate(app, realm, upstream, **options):
    """Register the oidc-provider on the relying-party tenant for ``upstream.example``."""
    options.setdefault("client_secret", DEFAULT_CLIENT_SECRET)
    with app.app_context():
        registry.add(
            tenants.query_tenant(realm.tenant.slug),
            "op",
            issuer=upstream.issuer,
            client_id=DEFAULT_CLIENT_ID,
            domains=[DOMAIN],
            display_name="Upstream OP",
            allow_private_network=True,
            **options,
        )


def callback(realm):
    return f"{realm.issuer}/federation/op/callback"


def start(realm, browser, email):
    journey = Journey(realm, browser).start()
    response = browser.submit(journey.page, {"email": email})
    return journey, response


def test_jit_sign_in_with_trusted_upstream_mfa(app, realm, browser, make_upstream):  # noqa: F811
    upstream = make_upstream(redirect_uris=[callback(realm)])
    federate(app, realm, upstream, jit=True, trust_mfa=True)
    journey, response = start(realm, browser, f"alice@{DOMAIN}")
    journey.page = sign_in_upstream(browser, response, "alice", DEFAULT_PASSWORD, REDIRECT_URI)
    claims = decode_id_token(realm, journey.tokens()["id_token"]).claims
    assert claims["amr"] == ["fed", "mfa"]
    authorizations = upstream.events("authorization")
    assert authorizations and authorizations[-1]["params"]["login_hint"] == f"alice@{DOMAIN}"
    assert authorizations[-1]["params"]["code_challenge_method"] == "S256"


def test_pre_provisioned_user_and_local_authenticator(app, realm, browser, factory, make_upstream):  # noqa: F811
    upstream = make_upstream(redirect_uris=[callback(realm)])
    federate(app, realm, upstream)
    factory.user(realm.tenant, email=f"alice@{DOMAIN}", totp_secret=None)
    journey, response = start(realm, browser, f"alice@{DOMAIN}")
    journey.page = sign_in_upstream(browser, response, "alice", DEFAULT_PASSWORD, REDIRECT_URI)
    journey.expect("totp_enrol")
    phone = Authenticator(journey.totp_secret())
    journey.submit().submit({"code": phone.code()}).submit()
    claims = decode_id_token(realm, journey.tokens()["id_token"]).claims
    assert set(claims["amr"]) == {"fed", "otp", "mfa"}


def test_unverified_email_is_not_linked(app, realm, browser, factory, make_upstream):  # noqa: F811
    upstream = make_upstream(redirect_uris=[callback(realm)])
    federate(app, realm, upstream, jit=True)
    factory.user(realm.tenant, email=f"bob@{DOMAIN}")
    journey, response = start(realm, browser, f"bob@{DOMAIN}")
    page = sign_in_upstream(browser, response, "bob", DEFAULT_PASSWORD, REDIRECT_URI)
    assert 'data-error-code="user_not_found"' in page.text


def test_upstream_denies_access(app, realm, browser, make_upstream):  # noqa: F811
    upstream = make_upstream(redirect_uris=[callback(realm)])
    federate(app, realm, upstream, jit=True)
    journey, response = start(realm, browser, f"alice@{DOMAIN}")
    page = deny_at_upstream(browser, response, REDIRECT_URI)
    assert page.status_code == 403 and 'data-error-code="idp_denied"' in page.text


def test_wrong_client_secret_is_an_sso_misconfiguration(app, realm, browser, make_upstream):  # noqa: F811
    upstream = make_upstream(redirect_uris=[callback(realm)])
    federate(app, realm, upstream, jit=True, client_secret="not-the-secret")
    result = app.test_cli_runner().invoke(
        args=["idp", "upstream", "test", "--tenant", realm.tenant.slug, "op", "--json"]
    )
    report = json.loads(result.output)
    assert result.exit_code == 1 and not report["ok"]
    assert {c["check"]: c["ok"] for c in report["checks"]} == {
        "discovery": True,
        "jwks": True,
        "pkce": True,
        "credentials": False,
    }
    journey, response = start(realm, browser, f"alice@{DOMAIN}")
    page = sign_in_upstream(browser, response, "alice", DEFAULT_PASSWORD, REDIRECT_URI)
    assert 'data-error-code="sso_misconfigured"' in page.text


def test_upstream_test_command_passes_a_good_configuration(app, realm, make_upstream):  # noqa: F811
    upstream = make_upstream(redirect_uris=[callback(realm)])
    federate(app, realm, upstream)
    result = app.test_cli_runner().invoke(
        args=["idp", "upstream", "test", "--tenant", realm.tenant.slug, "op"]
    )
    assert result.exit_code == 0, result.output
    assert "ok   credentials" in result.output
