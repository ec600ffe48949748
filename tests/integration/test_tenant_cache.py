"""Each process keeps a tenant it loaded for ``IDP_TENANT_CACHE_TTL`` seconds: a change made
by another process (another node, the CLI) reaches it within that delay, a change made in
the process at once, and a new tenant is served at once."""

import time

from sqlalchemy import update

from idp.extensions import db
from idp.models import Tenant
from idp.services import tenants
from tests.conftest import make_app


def brand(client, slug):
    return client.get(f"/{slug}/branding.css").get_data(as_text=True)


def change_elsewhere(app, slug, color):
    """What another node's ``idp tenant update`` does: the row changes, not this process."""
    with app.app_context():
        db.session.execute(
            update(Tenant).where(Tenant.slug == slug).values(settings={"brand_color": color})
        )
        db.session.commit()


def test_a_change_made_elsewhere_arrives_within_the_ttl(tmp_path_factory, database):
    app = make_app(tmp_path_factory, database, TENANT_CACHE_TTL=0.5)
    client = app.test_client()
    with app.app_context():
        slug = tenants.create_tenant(f"k-{time.time_ns()}", "Kept").slug
    change_elsewhere(app, slug, "#111111")
    assert "#111111" in brand(client, slug)

    change_elsewhere(app, slug, "#222222")
    assert "#111111" in brand(client, slug)  # kept: no query for this request
    deadline = time.monotonic() + 10
    while "#222222" not in brand(client, slug):
        assert time.monotonic() < deadline, "the change never arrived"
        time.sleep(0.1)


def test_a_change_made_in_this_process_applies_at_once(tmp_path_factory, database):
    app = make_app(tmp_path_factory, database, TENANT_CACHE_TTL=3600)
    client = app.test_client()
    with app.app_context():
        slug = tenants.create_tenant(f"k-{time.time_ns()}", "Kept").slug
    assert "--brand" not in brand(client, slug)

    with app.app_context():
        tenants.update_tenant(tenants.query_tenant(slug), brand_color="#333333")
    assert "#333333" in brand(client, slug)


def test_an_unknown_slug_is_not_kept(tmp_path_factory, database):
    app = make_app(tmp_path_factory, database, TENANT_CACHE_TTL=3600)
    client = app.test_client()
    slug = f"k-{time.time_ns()}"
    assert client.get(f"/{slug}/branding.css").status_code == 404

    with app.app_context():
        tenants.create_tenant(slug, "New")
    assert client.get(f"/{slug}/branding.css").status_code == 200
