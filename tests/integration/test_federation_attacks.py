"""Federation against a misbehaving upstream: every corrupted answer ends on a clean refusal.

The upstream is :class:`tests.fake_upstream.FakeUpstream`, an OP whose answers are broken
on purpose, one fault per test. Each refusal is checked from outside and inside: the
user sees the failure page (403 and the stable ``data-error-code``), no authorization
code reaches the relying party, and the audit log's ``federation.failure`` row names
the cause for the tenant's administrators.
"""

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.federation import outbound
from idp.federation import registry
from idp.models import AuditEvent
from idp.models import AuthorizationCode
from idp.models import FederatedIdentity
from idp.services import tenants
from tests.fake_upstream import CLIENT_ID
from tests.fake_upstream import DROP
from tests.fake_upstream import ENDLESS_CAP
from tests.fake_upstream import FakeUpstream
from tests.integration.journey import Journey
from tests.integration.realm import REDIRECT_URI
from tests.integration.realm import Realm

CORP = "corp.example"


@pytest.fixture
def fakes():
    """``fakes(**faults) -> FakeUpstream``: started now, stopped when the test ends."""
    started = []

    def make(**faults):
        started.append(FakeUpstream(**faults).start())
        return started[-1]

    yield make
    for fake in started:
        fake.stop()


class Attacked:
    """A relying-party tenant whose ``corp.example`` users sign in at fake upstreams."""

    def __init__(self, app, server, factory, browser):
        self.app, self.browser = app, browser
        self.realm = Realm(server, factory, browser)
        self.factory = factory

    def register(self, fake, alias="fake", domains=(CORP,), allow_private_network=True, **options):
        """Register ``fake`` as upstream ``alias``; returns idp's callback URL for it."""
        callback = f"{self.realm.issuer}/federation/{alias}/callback"
        fake.redirect_uri = callback
        with self.app.app_context():
            registry.add(
                self._tenant(),
                alias,
                client_secret=fake.client_secret,
                issuer=fake.issuer,
                client_id=fake.client_id,
                domains=list(domains),
                allow_private_network=allow_private_network,
                **{"jit": False, "trust_mfa": False, **options},
            )
        return callback

    def _tenant(self):
        return tenants.query_tenant(self.realm.tenant.slug)

    def sign_in(self, email=f"emp@{CORP}"):
        """Email at idp → the fake → idp's callback → idp's answer; returns the journey."""
        return Journey(self.realm, self.browser).start().submit({"email": email})

    def to_callback(self, callback, email=f"emp@{CORP}"):
        """Like :meth:`sign_in`, but stop at idp's callback URL (not fetched)."""
        journey = Journey(self.realm, self.browser).start()
        reached = self.browser.follow(self.browser.submit(journey.page, {"email": email}), callback)
        assert isinstance(reached, str), f"never sent back to {callback}: {reached.text[:300]}"
        return reached

    def failures(self):
        """The ``federation.failure`` audit details of this tenant, oldest first."""
        with self.app.app_context():
            rows = db.session.execute(
                select(AuditEvent)
                .where(
                    AuditEvent.tenant_id == self._tenant().id,
                    AuditEvent.event == "federation.failure",
                )
                .order_by(AuditEvent.id)
            ).scalars()
            return [row.detail for row in rows]

    def codes_issued(self):
        """Authorization codes idp issued to this tenant's relying party."""
        with self.app.app_context():
            stmt = select(AuthorizationCode).where(AuthorizationCode.tenant_id == self._tenant().id)
            return list(db.session.execute(stmt).scalars())

    def links(self):
        """(issuer, subject) of every federated identity linked in this tenant."""
        with self.app.app_context():
            stmt = select(FederatedIdentity).where(FederatedIdentity.tenant_id == self._tenant().id)
            return [(row.issuer, row.subject) for row in db.session.execute(stmt).scalars()]

    def assert_refused(self, page, code, cause, resume=True):
        """403 with ``code`` on the page, no code at the client, and the cause audited last.

        ``resume``: carrying on with the journey afterwards does not reach the client either.
        """
        assert not isinstance(page, str), f"a code reached the relying party: {page}"
        assert page.status_code == 403, (page.status_code, page.url, page.text[:500])
        assert f'data-error-code="{code}"' in page.text, page.text[:800]
        if resume:
            again = self.browser.follow(
                self.browser.get(f"{self.realm.issuer}/login"), REDIRECT_URI
            )
            assert not isinstance(again, str), f"the journey went on to the client: {again}"
        assert self.codes_issued() == []
        audited = self.failures()
        assert audited, "no federation.failure in the audit log"
        assert audited[-1]["code"] == code and cause in (audited[-1]["cause"] or ""), audited


@pytest.fixture
def attacked(app, server, factory, browser):
    return Attacked(app, server, factory, browser)


def refused_after(attacked, fake, code, cause, **options):
    """Register ``fake``, sign in through it, and check the refusal."""
    attacked.register(fake, **options)
    journey = attacked.sign_in()
    attacked.assert_refused(journey.page, code, cause)
    return journey


# -- the fake itself: an honest answer signs the user in --------------------------------


def test_the_fake_upstream_signs_in_when_it_behaves(attacked, fakes):
    fake = fakes()
    attacked.register(fake, jit=True, trust_mfa=True)
    journey = attacked.sign_in()
    assert isinstance(journey.page, str), journey.page.text[:600]
    assert journey.code_at_client()
    assert fake.calls("token") == 1
    assert attacked.links() == [(fake.issuer, fake.account["sub"])]


# -- the ID token (OIDC Core §3.1.3.7) --------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "cause"),
    [
        pytest.param({"signing": "other_key"}, "bad_signature", id="signed-by-another-key"),
        pytest.param(
            {"signing": "none", "algs": ["none", "RS256"]}, "unsupported_algorithm", id="alg-none"
        ),
        pytest.param(
            {"signing": "hs256_public_pem", "algs": ["HS256", "RS256"]},
            "unsupported_algorithm",
            id="hs256-with-the-public-key-as-secret",
        ),
    ],
)
def test_id_token_not_signed_by_the_upstreams_key_is_refused(attacked, fakes, faults, cause):
    fake = fakes(**faults)
    refused_after(attacked, fake, "sso_misconfigured", cause)
    assert attacked.links() == []


@pytest.mark.parametrize(
    ("claims", "cause"),
    [
        pytest.param({"iss": "https://evil.example"}, "id_token iss", id="iss-wrong"),
        pytest.param({"aud": "another-client"}, "id_token aud", id="aud-wrong"),
        pytest.param({"aud": [CLIENT_ID, "another-client"]}, "id_token azp", id="auds-no-azp"),
        pytest.param(
            {"aud": [CLIENT_ID, "another-client"], "azp": "another-client"},
            "id_token azp",
            id="auds-other-azp",
        ),
        pytest.param(
            {"iat": lambda now: now - 400, "exp": lambda now: now - 300},
            "id_token exp",
            id="expired",
        ),
        pytest.param({"iat": lambda now: now + 3600}, "id_token iat", id="iat-in-the-future"),
        pytest.param({"nonce": "not-the-nonce-idp-sent"}, "id_token nonce", id="nonce-mismatch"),
        pytest.param({"sub": DROP}, "id_token sub", id="no-sub"),
        pytest.param({"nonce": "n\u00f6nce"}, "id_token nonce", id="non-ascii-nonce"),
        pytest.param({"exp": float("nan")}, "id_token exp", id="exp-NaN"),
        pytest.param({"exp": float("inf")}, "id_token exp", id="exp-Infinity"),
        pytest.param({"iat": float("nan")}, "id_token iat", id="iat-NaN"),
    ],
)
def test_id_token_with_a_wrong_claim_is_refused(attacked, fakes, claims, cause):
    fake = fakes(claims=claims)
    refused_after(attacked, fake, "sso_misconfigured", cause)
    assert fake.calls("token") == 1
    assert attacked.links() == []


def test_userinfo_about_another_subject_is_refused(attacked, fakes):
    """OIDC Core §5.3.4: the ID token has no email, and userinfo speaks of someone else."""
    fake = fakes(claims={"email": DROP}, userinfo={"sub": "someone-else"})
    refused_after(attacked, fake, "sso_misconfigured", "userinfo sub differs")


# -- the authorization response (RFC 9700 §4.4, RFC 9207) --------------------------------


@pytest.mark.parametrize(
    "state", ["a-state-idp-never-sent", "st\u00e4te"], ids=["other", "non-ascii"]
)
def test_state_mismatch_is_an_invalid_callback(attacked, fakes, state):
    fake = fakes(state=state)
    refused_after(attacked, fake, "invalid_callback", "state does not match")
    assert fake.calls("token") == 0


def test_a_response_delivered_to_another_upstreams_callback_is_refused(attacked, fakes):
    first, second = fakes(), fakes()
    first_callback = attacked.register(first, alias="fake-a")
    second_callback = attacked.register(second, alias="fake-b", domains=["other.example"])
    reached = attacked.to_callback(first_callback)
    page = attacked.browser.get(f"{second_callback}?{urlsplit(reached).query}")
    attacked.assert_refused(page, "invalid_callback", "no sign-in with this upstream is under way")
    assert attacked.failures()[-1]["upstream"] == "fake-b"
    assert first.calls("token") == 0 and second.received == []
    back = attacked.browser.get(reached)
    attacked.assert_refused(back, "invalid_callback", "no sign-in with this upstream is under way")
    assert first.calls("token") == 0, "the attempt was used up by the misdelivered response"


@pytest.mark.parametrize(
    "response_iss",
    [
        pytest.param("https://other-op.example", id="iss-wrong"),
        pytest.param(DROP, id="iss-missing"),
    ],
)
def test_mix_up_iss_in_the_authorization_response_is_refused(attacked, fakes, response_iss):
    fake = fakes(response_iss=response_iss, iss_supported=True)
    refused_after(attacked, fake, "sso_misconfigured", "authorization response iss")
    assert fake.calls("token") == 0, "the code is never sent to a token endpoint"


def test_a_replayed_callback_fails_the_second_time(attacked, fakes):
    fake = fakes()
    callback = attacked.register(fake, jit=True, trust_mfa=True)
    reached = attacked.to_callback(callback)
    first = attacked.browser.get(reached)
    assert first.status_code == 303 and first.headers["Location"].endswith("/login")
    replayed = attacked.browser.get(reached)
    attacked.assert_refused(
        replayed, "invalid_callback", "no sign-in with this upstream is under way", resume=False
    )
    assert fake.calls("token") == 1, "the replay never reached the upstream's token endpoint"


@pytest.mark.parametrize(
    ("error", "code"),
    [("access_denied", "idp_denied"), ("server_error", "sso_misconfigured")],
)
def test_upstream_error_response(attacked, fakes, error, code):
    fake = fakes(error=error)
    refused_after(attacked, fake, code, f"upstream error {error}")
    assert fake.calls("token") == 0


# -- discovery and reachability ----------------------------------------------------------


def test_discovery_that_is_not_json_is_refused(attacked, fakes):
    """Nested deeper than any parser recurses: still just "not JSON", never a crash."""
    fake = fakes(body={"discovery": b"[" * 100_000})
    refused_after(attacked, fake, "sso_misconfigured", "discovery: not_json")


def test_discovery_for_another_issuer_is_refused_before_leaving_idp(attacked, fakes):
    fake = fakes(issuer="https://impostor.example")
    journey = refused_after(attacked, fake, "sso_misconfigured", "discovery issuer")
    assert journey.page.url.startswith(f"{attacked.realm.issuer}/login/sso/")
    assert fake.calls("authorize") == 0, "the browser was never sent to the upstream"


@pytest.mark.parametrize(
    ("endpoint", "cause"),
    [("discovery", "discovery: timeout"), ("token", "token endpoint: timeout")],
)
def test_an_upstream_that_never_answers_gets_a_clear_page(attacked, fakes, endpoint, cause):
    """idp's own read timeout (``outbound.TIMEOUT``) cuts the wait, well before the fake's
    ``HANG_SECONDS``; stopping the fake at the end releases its hanging answer."""
    fake = fakes(hang=(endpoint,))
    refused_after(attacked, fake, "sso_misconfigured", cause)


def test_an_upstream_that_trickles_its_answer_is_cut_off(attacked, fakes, monkeypatch):
    """One byte at a time never trips the read timeout; idp's deadline for the whole
    exchange (``outbound.DEADLINE``, shortened here) does."""
    monkeypatch.setattr(outbound, "DEADLINE", 1)
    fake = fakes(trickle=("discovery",))
    refused_after(attacked, fake, "sso_misconfigured", "discovery: timeout")


def test_an_endless_answer_is_cut_off_at_the_size_limit(attacked, fakes):
    """idp stops reading past ``outbound.MAX_BYTES`` instead of buffering the whole body."""
    fake = fakes(endless=("jwks",))
    refused_after(attacked, fake, "sso_misconfigured", "jwks: too_large")
    assert fake.streamed["jwks"] < ENDLESS_CAP, "idp read the whole body"


# -- linking (DESIGN §6): an upstream never takes over an account by asserting an email --


@pytest.mark.parametrize("verified", [False, "true", DROP], ids=["false", "string-true", "absent"])
def test_an_unverified_email_is_not_linked_to_the_local_account(attacked, fakes, verified):
    email = f"emp@{CORP}"
    attacked.factory.user(attacked.realm.tenant, email=email, totp_secret=None)
    fake = fakes()
    fake.account["email_verified"] = verified
    refused_after(attacked, fake, "user_not_found", "no linkable account", jit=True)
    assert attacked.links() == []


def test_a_verified_email_outside_the_upstreams_domains_is_not_linked(attacked, fakes):
    victim = "boss@partner.example"
    attacked.factory.user(attacked.realm.tenant, email=victim, totp_secret=None)
    fake = fakes()
    fake.account["email"] = victim
    refused_after(attacked, fake, "user_not_found", "no linkable account", jit=True)
    assert attacked.links() == []


# -- SSRF ---------------------------------------------------------------------------------


def test_an_upstream_on_loopback_is_refused_without_allow_private_network(attacked, fakes):
    fake = fakes()
    refused_after(
        attacked, fake, "sso_misconfigured", "private_address", allow_private_network=False
    )
    assert fake.received == [], "not a single request left idp"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/.well-known/openid-configuration",
        "https://10.1.2.3/token",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/jwks",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
        "http://2130706433/",  # 127.0.0.1 as one decimal number
    ],
)
def test_check_destination_refuses_private_addresses(url):
    with pytest.raises(outbound.OutboundError) as refused:
        outbound.check_destination(url)
    assert refused.value.cause == "private_address"
    outbound.check_destination(url, allow_private=True)  # unless the upstream allows it


def test_check_destination_allows_a_public_address():
    outbound.check_destination("https://93.184.215.14/.well-known/openid-configuration")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://93.184.215.14/", "https:///x"])
def test_check_destination_refuses_what_is_not_an_http_url(url):
    with pytest.raises(outbound.OutboundError) as refused:
        outbound.check_destination(url, allow_private=True)
    assert refused.value.cause == "bad_url"
