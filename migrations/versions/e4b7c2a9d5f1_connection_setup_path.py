"""idp_connections.setup_path: the setup path the admin chose in the walkthrough

The provider's walkthrough (Salesforce: a connected app, or an external client app) returns to the
chosen path when the wizard links to it; null until a choice is made.

Revision ID: e4b7c2a9d5f1
Revises: d3a9f1c7b2e4
Create Date: 2026-12-01 19:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e4b7c2a9d5f1'
down_revision = 'd3a9f1c7b2e4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('idp_connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('setup_path', sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table('idp_connections', schema=None) as batch_op:
        batch_op.drop_column('setup_path')
