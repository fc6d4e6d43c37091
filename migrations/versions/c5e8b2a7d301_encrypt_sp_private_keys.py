"""encrypt the SP private keys at rest

No schema change: ``idp_connections.sp_private_key`` (TEXT) now holds a Fernet token instead of
PEM. Rows written before are encrypted here with the first key of SP_KEY_ENCRYPTION_KEY, read from
the app's settings (Flask-Migrate runs migrations inside the app, so this is the key the servers
use). Without an app (plain alembic) the rows are left alone: the portal still reads them, logs a
warning, and `flask keys rotate` encrypts them. Downgrade decrypts them back to PEM.

Fernet is used directly (not app.key_encryption) so that this migration keeps working whatever
that module becomes.

Revision ID: c5e8b2a7d301
Revises: a1d4e7f2c9b3
Create Date: 2026-12-01 16:20:00.000000

"""
import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet, MultiFernet


# revision identifiers, used by Alembic.
revision = 'c5e8b2a7d301'
down_revision = 'a1d4e7f2c9b3'
branch_labels = None
depends_on = None

connections = sa.table('idp_connections', sa.column('id', sa.Integer), sa.column('sp_private_key', sa.Text))


def _keyring():
    try:
        from flask import current_app

        setting = current_app.config.get('SP_KEY_ENCRYPTION_KEY', '')
    except RuntimeError:  # no app context
        return None
    keys = [key.strip() for key in setting.split(',') if key.strip()]
    return MultiFernet([Fernet(key) for key in keys]) if keys else None


def upgrade():
    keyring = _keyring()
    if keyring is None:
        return
    bind = op.get_bind()
    rows = bind.execute(sa.select(connections.c.id, connections.c.sp_private_key)).all()
    for connection_id, stored in rows:
        if stored and stored.lstrip().startswith('-----BEGIN'):
            token = keyring.encrypt(stored.encode()).decode('ascii')
            bind.execute(connections.update().where(connections.c.id == connection_id).values(sp_private_key=token))


def downgrade():
    keyring = _keyring()
    if keyring is None:
        return
    bind = op.get_bind()
    rows = bind.execute(sa.select(connections.c.id, connections.c.sp_private_key)).all()
    for connection_id, stored in rows:
        if stored and not stored.lstrip().startswith('-----BEGIN'):
            pem = keyring.decrypt(stored.encode('ascii')).decode()
            bind.execute(connections.update().where(connections.c.id == connection_id).values(sp_private_key=pem))
