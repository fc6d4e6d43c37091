"""support console: one index per sessions filter, so every page (the last one too) is a bounded seek

- (expires_at, id) WHERE revoked_at IS NULL: active and expired sessions, latest expiry first;
- (account_id, expires_at, id) WHERE revoked_at IS NULL: the same within one account;
- (created_at, id) WHERE revoked_at IS NOT NULL: revoked sessions, newest first;
- (app, created_at, id): one app's sessions, newest first;
- (last_used_at, id, account_id, revoked_at, expires_at): sessions last used in a range of days,
  most recently used first (the last three let SQLite check a combined filter in the index);
- (expires_at, id) replaces (expires_at): PostgreSQL sometimes chose the one-column index for the
  lists above and then sorted every session sharing an expiry.

Revision ID: c5e8b2d47a91
Revises: c5e2b8f1a7d4
Create Date: 2026-12-01 16:15:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c5e8b2d47a91'
down_revision = 'c5e2b8f1a7d4'
branch_labels = None
depends_on = None

UNREVOKED = sa.text('revoked_at IS NULL')
REVOKED = sa.text('revoked_at IS NOT NULL')


def upgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_expires_at_id', ['expires_at', 'id'], unique=False)
        batch_op.drop_index('ix_sessions_expires_at')
        batch_op.create_index(
            'ix_sessions_unrevoked_expires_at_id',
            ['expires_at', 'id'],
            unique=False,
            sqlite_where=UNREVOKED,
            postgresql_where=UNREVOKED,
        )
        batch_op.create_index(
            'ix_sessions_account_unrevoked_expires_at_id',
            ['account_id', 'expires_at', 'id'],
            unique=False,
            sqlite_where=UNREVOKED,
            postgresql_where=UNREVOKED,
        )
        batch_op.create_index(
            'ix_sessions_revoked_created_at_id',
            ['created_at', 'id'],
            unique=False,
            sqlite_where=REVOKED,
            postgresql_where=REVOKED,
        )
        batch_op.create_index('ix_sessions_app_created_at_id', ['app', 'created_at', 'id'], unique=False)
        batch_op.create_index(
            'ix_sessions_last_used_at_id_account_state',
            ['last_used_at', 'id', 'account_id', 'revoked_at', 'expires_at'],
            unique=False,
        )


def downgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_last_used_at_id_account_state')
        batch_op.drop_index('ix_sessions_app_created_at_id')
        batch_op.drop_index('ix_sessions_revoked_created_at_id')
        batch_op.drop_index('ix_sessions_account_unrevoked_expires_at_id')
        batch_op.drop_index('ix_sessions_unrevoked_expires_at_id')
        batch_op.create_index('ix_sessions_expires_at', ['expires_at'], unique=False)
        batch_op.drop_index('ix_sessions_expires_at_id')
