"""token and user change notifications: NOTIFY idp_tokens and idp_users

Each process keeps the access tokens userinfo and introspection looked up
(idp.services.token_cache) and forgets one when PostgreSQL delivers one of these
notifications, sent when the changing transaction commits. Triggers, not application code,
so that every change counts: the services', a cascade's, an operator's in psql. Nothing on
SQLite, where nothing is cached.

- tokens: the row's jti, on an UPDATE that changes revoked_at or access_revoked_at, or on
  any UPDATE that leaves rotated_at as it was (a refresh token's rotation alone changes no
  access token); on the DELETE of a row whose access token has not expired (the purge of
  expired rows stays silent: callers check expiry on every use).
- users: the user's id, on an UPDATE of a column the lookup reads (sub, email, name,
  email_verified, state, activation_deadline, access_expires_at), and on DELETE; a sign-in
  (totp_last_step, password_changed_at, ...) stays silent.
- TRUNCATE of either: an empty payload, and every token is forgotten.

Revision ID: 5e0b7d3a91c4
Revises: c41e7a2d9b13
Create Date: 2026-12-04 02:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5e0b7d3a91c4'
down_revision = 'c41e7a2d9b13'
branch_labels = None
depends_on = None

USER_COLUMNS = (
    "sub", "email", "name", "email_verified", "state", "activation_deadline", "access_expires_at"
)


def _notifying_function(name, channel, payload):
    """A trigger function: NOTIFY ``channel`` with ``payload`` for a row; empty for a
    TRUNCATE (a statement-level trigger), which makes the cache forget everything."""
    return f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_LEVEL = 'STATEMENT' THEN
                PERFORM pg_notify('{channel}', '');
            ELSE
                PERFORM pg_notify('{channel}', {payload});
            END IF;
            RETURN NULL;
        END
        $$
    """


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_notifying_function("idp_token_changed", "idp_tokens", "OLD.jti"))
    op.execute(
        "CREATE TRIGGER tokens_changed AFTER UPDATE ON tokens FOR EACH ROW WHEN ("
        "OLD.revoked_at IS DISTINCT FROM NEW.revoked_at "
        "OR OLD.access_revoked_at IS DISTINCT FROM NEW.access_revoked_at "
        "OR OLD.rotated_at IS NOT DISTINCT FROM NEW.rotated_at"
        ") EXECUTE FUNCTION idp_token_changed()"
    )
    op.execute(
        "CREATE TRIGGER tokens_deleted AFTER DELETE ON tokens FOR EACH ROW "
        "WHEN (OLD.access_expires_at > extract(epoch FROM now())) "
        "EXECUTE FUNCTION idp_token_changed()"
    )
    op.execute(
        "CREATE TRIGGER tokens_truncated AFTER TRUNCATE ON tokens "
        "FOR EACH STATEMENT EXECUTE FUNCTION idp_token_changed()"
    )
    op.execute(_notifying_function("idp_user_changed", "idp_users", "OLD.id::text"))
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in USER_COLUMNS)
    op.execute(
        f"CREATE TRIGGER users_changed AFTER UPDATE ON users FOR EACH ROW WHEN ({changed}) "
        "EXECUTE FUNCTION idp_user_changed()"
    )
    op.execute(
        "CREATE TRIGGER users_deleted AFTER DELETE ON users "
        "FOR EACH ROW EXECUTE FUNCTION idp_user_changed()"
    )
    op.execute(
        "CREATE TRIGGER users_truncated AFTER TRUNCATE ON users "
        "FOR EACH STATEMENT EXECUTE FUNCTION idp_user_changed()"
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for trigger, table in (
        ("tokens_changed", "tokens"), ("tokens_deleted", "tokens"), ("tokens_truncated", "tokens"),
        ("users_changed", "users"), ("users_deleted", "users"), ("users_truncated", "users"),
    ):  # fmt: skip
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS idp_token_changed()")
    op.execute("DROP FUNCTION IF EXISTS idp_user_changed()")
