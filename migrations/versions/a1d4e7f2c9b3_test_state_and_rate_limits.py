"""connection test state in columns; rate-limit counters

The audit log becomes write-only: whether a connection passed a test sign-in was a query over
audit events, and password failures were counted from them. Both are state, kept here. Existing
connections get their columns filled from the audit trail once.

Revision ID: a1d4e7f2c9b3
Revises: 3f8a1c2d9e47
Create Date: 2026-12-01 16:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a1d4e7f2c9b3'
down_revision = '3f8a1c2d9e47'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('idp_connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('saml_test_passed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('signin_test_passed_at', sa.DateTime(), nullable=True))
    op.create_table(
        'rate_limit_counters',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('window_start', sa.DateTime(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key', 'window_start', name=op.f('pk_rate_limit_counters')),
    )
    with op.batch_alter_table('rate_limit_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limit_counters_expires_at'), ['expires_at'], unique=False)
    # Backfill from the audit trail (events older than a connection are not its own: ids can be reused).
    op.execute(
        """
        UPDATE idp_connections SET saml_test_passed_at = (
            SELECT MIN(e.created_at) FROM audit_events e
            WHERE e.connection_id = idp_connections.id AND e.created_at >= idp_connections.created_at
              AND e.action = 'connection.test'
              AND (e.outcome = 'success' OR e.error_code IN ('USER_NOT_FOUND', 'USER_DEACTIVATED', 'NO_ROLE_FOR_APP'))
        )
        """
    )
    op.execute(
        """
        UPDATE idp_connections SET signin_test_passed_at = (
            SELECT MIN(e.created_at) FROM audit_events e
            WHERE e.connection_id = idp_connections.id AND e.created_at >= idp_connections.created_at
              AND e.action = 'connection.test' AND e.outcome = 'success'
        )
        """
    )


def downgrade():
    with op.batch_alter_table('rate_limit_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limit_counters_expires_at'))
    op.drop_table('rate_limit_counters')
    with op.batch_alter_table('idp_connections', schema=None) as batch_op:
        batch_op.drop_column('signin_test_passed_at')
        batch_op.drop_column('saml_test_passed_at')
