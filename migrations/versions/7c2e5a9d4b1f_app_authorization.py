"""app authorization requests and codes (desktop and mobile sign-in, RFC 8252 + PKCE)

Revision ID: 7c2e5a9d4b1f
Revises: 49bdcb67094c
Create Date: 2026-11-28 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c2e5a9d4b1f'
down_revision = '49bdcb67094c'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('app_authorization_requests',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('app', sa.String(length=20), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2048), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=512), nullable=False),
    sa.Column('login_hint', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_authorization_requests'))
    )
    with op.batch_alter_table('app_authorization_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_authorization_requests_expires_at'), ['expires_at'], unique=False)

    op.create_table('app_authorization_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('app', sa.String(length=20), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2048), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=True),
    sa.Column('saml_name_id', sa.String(length=1024), nullable=True),
    sa.Column('saml_session_index', sa.String(length=1024), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['idp_connections.id'], name=op.f('fk_app_authorization_codes_connection_id_idp_connections'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_app_authorization_codes_session_id_sessions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_app_authorization_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_authorization_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_app_authorization_codes_code_hash'))
    )
    with op.batch_alter_table('app_authorization_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_app_authorization_codes_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_app_authorization_codes_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('app_authorization_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_authorization_codes_user_id'))
        batch_op.drop_index(batch_op.f('ix_app_authorization_codes_expires_at'))

    op.drop_table('app_authorization_codes')
    with op.batch_alter_table('app_authorization_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_app_authorization_requests_expires_at'))

    op.drop_table('app_authorization_requests')
