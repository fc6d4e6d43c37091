"""support console indexes: sessions (account_id, created_at, id), audit_events (actor, created_at, id)

The sessions index replaces ix_sessions_account_id, which it covers (same leading column): an
account's sessions, newest first, paged by (created_at, id). The audit index serves the audit
log's "done by" filter the same way.

Revision ID: 3f8a1c2d9e47
Revises: 7c2e5a9d4b1f
Create Date: 2026-11-28 12:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '3f8a1c2d9e47'
down_revision = '7c2e5a9d4b1f'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_account_id_created_at_id', ['account_id', 'created_at', 'id'], unique=False)
        batch_op.drop_index('ix_sessions_account_id')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_actor_created_at_id', ['actor', 'created_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_actor_created_at_id')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_account_id', ['account_id'], unique=False)
        batch_op.drop_index('ix_sessions_account_id_created_at_id')
