"""SCIM provisioning: tokens, groups, group-to-role mapping, memberships; users get source and SCIM columns

Existing users get source "admin" (the server default): they were made by admins or imports
before anyone could tell which.

Revision ID: b551605465ae
Revises: c5e8b2d4f6a1
Create Date: 2026-12-01 15:38:35.180005

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b551605465ae'
down_revision = 'c5e8b2d4f6a1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('scim_group_roles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('group_name', sa.String(length=256), nullable=False),
    sa.Column('group_key', sa.String(length=256), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_scim_group_roles_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_group_roles')),
    sa.UniqueConstraint('account_id', 'group_key', name=op.f('uq_scim_group_roles_account_id_group_key'))
    )
    op.create_table('scim_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('display_name', sa.String(length=256), nullable=False),
    sa.Column('external_id', sa.String(length=256), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_scim_groups_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_groups'))
    )
    with op.batch_alter_table('scim_groups', schema=None) as batch_op:
        batch_op.create_index('ix_scim_groups_account_id_display_name', ['account_id', 'display_name'], unique=False)

    op.create_table('scim_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=320), nullable=True),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_scim_tokens_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_scim_tokens_token_hash'))
    )
    with op.batch_alter_table('scim_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scim_tokens_account_id'), ['account_id'], unique=False)

    op.create_table('scim_group_members',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['scim_groups.id'], name=op.f('fk_scim_group_members_group_id_scim_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_scim_group_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_scim_group_members'))
    )
    with op.batch_alter_table('scim_group_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scim_group_members_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=10), server_default='admin', nullable=False))
        batch_op.add_column(sa.Column('external_id', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('scim_updated_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('scim_roles', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('scim_profile', sa.JSON(), nullable=True))
        batch_op.create_index('ix_users_account_id_external_id', ['account_id', 'external_id'], unique=False)



def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_account_id_external_id')
        batch_op.drop_column('scim_profile')
        batch_op.drop_column('scim_roles')
        batch_op.drop_column('scim_updated_at')
        batch_op.drop_column('external_id')
        batch_op.drop_column('source')

    with op.batch_alter_table('scim_group_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scim_group_members_user_id'))

    op.drop_table('scim_group_members')
    with op.batch_alter_table('scim_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scim_tokens_account_id'))

    op.drop_table('scim_tokens')
    with op.batch_alter_table('scim_groups', schema=None) as batch_op:
        batch_op.drop_index('ix_scim_groups_account_id_display_name')

    op.drop_table('scim_groups')
    op.drop_table('scim_group_roles')
