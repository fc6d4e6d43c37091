"""SP encryption key pairs per connection (encrypted assertions, with rollover); sessions by
connection and NameID (Single Logout)

Revision ID: c5e2b8f1a7d4
Revises: b7e3c1a9d5f2
Create Date: 2026-12-01 16:15:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c5e2b8f1a7d4'
down_revision = 'b7e3c1a9d5f2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sp_encryption_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('connection_id', sa.Integer(), nullable=False),
        sa.Column('private_key', sa.Text(), nullable=False),
        sa.Column('certificate', sa.Text(), nullable=False),
        sa.Column('fingerprint_sha256', sa.String(length=95), nullable=False),
        sa.Column('not_after', sa.DateTime(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('retired_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['connection_id'],
            ['idp_connections.id'],
            name=op.f('fk_sp_encryption_keys_connection_id_idp_connections'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sp_encryption_keys')),
    )
    with op.batch_alter_table('sp_encryption_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sp_encryption_keys_connection_id'), ['connection_id'], unique=False)
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_connection_id_saml_name_id', ['connection_id', 'saml_name_id'], unique=False)


def downgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_connection_id_saml_name_id')
    with op.batch_alter_table('sp_encryption_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sp_encryption_keys_connection_id'))
    op.drop_table('sp_encryption_keys')
