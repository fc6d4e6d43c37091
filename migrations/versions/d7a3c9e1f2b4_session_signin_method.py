"""sessions.signin_method, and one user's sessions indexed with the console's filter columns

- signin_method: how the user signed in (sso or password), kept after the connection is deleted
  (connection_id is then null, like a password sign-in's); null on older sessions, which are read
  from connection_id;
- (user_id, created_at, id, revoked_at, expires_at, app, account_id, last_used_at) replaces
  (user_id, created_at): the support console's partial email filter reads the sessions of the
  matching users from it and checks the other filters without fetching each row.

Revision ID: d7a3c9e1f2b4
Revises: c5e8b2d47a91
Create Date: 2026-12-01 19:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd7a3c9e1f2b4'
down_revision = 'c5e8b2d47a91'
branch_labels = None
depends_on = None

COVERING = ['user_id', 'created_at', 'id', 'revoked_at', 'expires_at', 'app', 'account_id', 'last_used_at']


def upgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signin_method', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_sessions_user_id_created_at_state', COVERING, unique=False)
        batch_op.drop_index('ix_sessions_user_id_created_at')


def downgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_user_id_created_at', ['user_id', 'created_at'], unique=False)
        batch_op.drop_index('ix_sessions_user_id_created_at_state')
        batch_op.drop_column('signin_method')
