"""sessions.signin_method: how the user signed in (sso or password), kept after the connection is
deleted (connection_id is then null, like a password sign-in's); null on older sessions, which are
read from connection_id

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


def upgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signin_method', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('signin_method')
