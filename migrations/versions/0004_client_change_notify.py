"""client change notifications: NOTIFY idp_clients on every UPDATE and DELETE of a client;
no ix_clients_tenant_id

Each process keeps the clients it authenticated (idp.services.client_cache) and forgets one
when PostgreSQL delivers this notification, sent when the changing transaction commits. A
trigger, not application code, so that every change counts: the services', a cascade's, an
operator's in psql. Nothing on SQLite, where nothing is cached.

The single-column index on clients.tenant_id goes: uq_clients_tenant_client starts with
that column and serves the same queries, and with both, PostgreSQL read a client through
the tenant's index (filtering all its clients) on a table it had not analysed yet.

Revision ID: c41e7a2d9b13
Revises: 82d69743189e
Create Date: 2026-12-03 13:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c41e7a2d9b13'
down_revision = '82d69743189e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clients_tenant_id'))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION idp_client_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_LEVEL = 'STATEMENT' THEN
                PERFORM pg_notify('idp_clients', '');  -- TRUNCATE: forget every client
            ELSE
                PERFORM pg_notify('idp_clients', OLD.tenant_id || ':' || OLD.client_id);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER clients_changed AFTER UPDATE OR DELETE ON clients "
        "FOR EACH ROW EXECUTE FUNCTION idp_client_changed()"
    )
    op.execute(
        "CREATE TRIGGER clients_truncated AFTER TRUNCATE ON clients "
        "FOR EACH STATEMENT EXECUTE FUNCTION idp_client_changed()"
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS clients_truncated ON clients")
        op.execute("DROP TRIGGER IF EXISTS clients_changed ON clients")
        op.execute("DROP FUNCTION IF EXISTS idp_client_changed()")
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clients_tenant_id'), ['tenant_id'], unique=False)
