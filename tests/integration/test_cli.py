"""The ``idp`` CLI (DESIGN §8): each create command prints one JSON object with --json."""

import json
import time
import uuid


def run(app, *args):
    result = app.test_cli_runner().invoke(args=["idp", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_tenant_client_user_create_with_json(app, server):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    tenant = json.loads(run(app, "tenant", "create", slug, "--name", "CLI Org", "--json"))
    assert tenant["issuer"].endswith(f"/{slug}")
    client = json.loads(
        run(
            app,
            "client",
            "create",
            "--tenant",
            slug,
            "--name",
            "App",
            "--redirect-uri",
            "https://app.example/cb",
            "--first-party",
            "--json",
        )
    )
    assert client["client_id"] and len(client["client_secret"]) >= 43
    assert client["redirect_uris"] == ["https://app.example/cb"]
    public = json.loads(
        run(
            app,
            "client",
            "create",
            "--tenant",
            slug,
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            "https://spa.example/cb",
            "--json",
        )
    )
    assert "client_secret" not in public and public["token_endpoint_auth_method"] == "none"
    user = json.loads(
        run(
            app,
            "user",
            "create",
            "--tenant",
            slug,
            "--email",
            "Ann@Example.com",
            "--password",
            "Some-Pass-123",
            "--active",
            "--json",
        )
    )
    assert user["email"] == "ann@example.com" and user["state"] == "active"


def test_bad_input_is_a_clear_error_not_a_trace(app):
    result = app.test_cli_runner().invoke(
        args=["idp", "tenant", "create", "Bad_Slug", "--name", "x"]
    )
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "slug" in result.output
    result = app.test_cli_runner().invoke(
        args=[
            "idp",
            "client",
            "create",
            "--tenant",
            "nope",
            "--name",
            "x",
            "--redirect-uri",
            "https://a.example/cb",
        ]
    )
    assert result.exit_code != 0 and "no tenant" in result.output


def test_keys_list_shows_states(app):
    output = run(app, "keys", "list")
    assert "active" in output and "next" in output


def test_user_lifecycle_commands(app, tmp_path):
    slug = f"life-{uuid.uuid4().hex[:8]}"
    run(app, "tenant", "create", slug, "--name", "Life")
    invited = json.loads(
        run(
            app,
            "user",
            "invite",
            "--tenant",
            slug,
            "--email",
            "a@life.example",
            "--no-welcome-email",
            "--expires",
            "2031-01-31",
            "--json",
        )
    )
    assert invited["state"] == "invited" and invited["activation_deadline"] > time.time()
    assert invited["access_expires_at"] > time.time()
    assert "disabled" in run(app, "user", "disable", "--tenant", slug, "--email", "a@life.example")
    assert "invited" in run(app, "user", "enable", "--tenant", slug, "--email", "a@life.example")
    assert "reset" in run(app, "user", "reset-mfa", "--tenant", slug, "--email", "a@life.example")
    assert "deleted" in run(app, "user", "delete", "--tenant", slug, "--email", "a@life.example")
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("email,name,expires\nb@life.example,Bee,\nnot-an-email,,\n")
    report = json.loads(
        run(app, "user", "import", "--tenant", slug, "--no-welcome-email", "--json", str(csv_file))
    )
    assert report["invited"] == ["b@life.example"]
    assert report["refused"][0]["line"] == 3
    missing = app.test_cli_runner().invoke(
        args=["idp", "user", "disable", "--tenant", slug, "--email", "nobody@life.example"]
    )
    assert missing.exit_code != 0 and "no user" in missing.output


def test_tenant_update_and_upstream_commands(app):
    slug = f"up-{uuid.uuid4().hex[:8]}"
    run(app, "tenant", "create", slug, "--name", "Up")
    updated = json.loads(
        run(
            app,
            "tenant",
            "update",
            slug,
            "--password-policy",
            "b2c",
            "--reveal-account-state",
            "--brand-color",
            "#112233",
            "--json",
        )
    )
    assert updated["settings"]["password_policy"] == "b2c"
    added = json.loads(
        run(
            app,
            "upstream",
            "add",
            "--tenant",
            slug,
            "entra",
            "--issuer",
            "https://login.example/tenant/v2.0",
            "--client-id",
            "abc",
            "--client-secret",
            "s3cret",
            "--domain",
            "Corp.Example",
            "--jit",
            "--json",
        )
    )
    assert added["domains"] == ["corp.example"] and added["jit"] is True
    assert added["redirect_uri"].endswith(f"/{slug}/federation/entra/callback")
    assert "s3cret" not in json.dumps(added)
    listing = json.loads(run(app, "upstream", "list", "--tenant", slug, "--json"))
    assert [u["alias"] for u in listing["upstreams"]] == ["entra"]
    run(app, "upstream", "update", "--tenant", slug, "entra", "--disabled")
    assert (
        json.loads(run(app, "upstream", "list", "--tenant", slug, "--json"))["upstreams"][0][
            "enabled"
        ]
        is False
    )
    run(app, "upstream", "remove", "--tenant", slug, "entra")
