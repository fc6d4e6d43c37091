"""index pending requests by browser, for the per-browser cap on live sign-in requests

Starting a sign-in counts the browser's live pending requests; the index keeps that one short
range read however many rows the table holds.

Revision ID: b7e3c1a9d5f2
Revises: b551605465ae
Create Date: 2026-12-01 16:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b7e3c1a9d5f2'
down_revision = 'b551605465ae'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('pending_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_requests_browser_binding_hash'), ['browser_binding_hash'], unique=False)


def downgrade():
    with op.batch_alter_table('pending_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_requests_browser_binding_hash'))
