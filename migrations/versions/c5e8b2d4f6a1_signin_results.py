"""signin_results: a verified sign-in waiting for its same-site finishing request

Revision ID: c5e8b2d4f6a1
Revises: c5e8b2a7d301
Create Date: 2026-12-01 16:10:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c5e8b2d4f6a1'
down_revision = 'c5e8b2a7d301'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'signin_results',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('browser_binding_hash', sa.String(length=64), nullable=False),
        sa.Column('request_binding_hash', sa.String(length=64), nullable=True),
        sa.Column('connection_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('saml_name_id', sa.String(length=1024), nullable=True),
        sa.Column('saml_session_index', sa.String(length=1024), nullable=True),
        sa.Column('app', sa.String(length=20), nullable=False),
        sa.Column('request_id', sa.String(length=128), nullable=True),
        sa.Column('next_path', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['connection_id'], ['idp_connections.id'],
            name=op.f('fk_signin_results_connection_id_idp_connections'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_signin_results_user_id_users'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_signin_results')),
    )
    with op.batch_alter_table('signin_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signin_results_connection_id'), ['connection_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_signin_results_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_signin_results_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('signin_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signin_results_user_id'))
        batch_op.drop_index(batch_op.f('ix_signin_results_expires_at'))
        batch_op.drop_index(batch_op.f('ix_signin_results_connection_id'))
    op.drop_table('signin_results')
