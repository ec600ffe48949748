"""The demo tenant, client and user that ``make run`` gives a newcomer on a new database."""

import json
import os

from idp.services import clients
from idp.services import tenants
from idp.services import users

DEMO_TENANT = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "Demo-Password-1"
DEMO_CLIENT_FILE = "demo_client.json"


def demo_client_path(config):
    """Where the demo relying party finds its client credentials (development only)."""
    return os.path.join(config["INSTANCE_DIR"], DEMO_CLIENT_FILE)


def seed_demo(config):
    """Create the demo realm if missing; returns the text that tells the newcomer what to do."""
    base = config["PUBLIC_URL"]
    tenant = tenants.query_tenant(DEMO_TENANT)
    if tenant is None:
        tenant = tenants.create_tenant(DEMO_TENANT, "Demo Company")
        users.create_user(tenant, DEMO_EMAIL, password=DEMO_PASSWORD, name="Demo User", active=True)
        client, secret = clients.create_client(
            tenant,
            "Demo relying party",
            {
                "redirect_uris": [f"{base}/demo-app/callback"],
                "post_logout_redirect_uris": [f"{base}/demo-app/"],
                "grant_types": ["authorization_code", "refresh_token"],
            },
            first_party=True,
            client_id="demo-rp",
        )
        path = demo_client_path(config)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"client_id": client.client_id, "client_secret": secret}, fh)
    return (
        f"\n  idp is ready at {base}\n"
        f"  demo relying party: {base}/demo-app/\n"
        f"  demo issuer:        {base}/{DEMO_TENANT}\n"
        f"  sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
    )
