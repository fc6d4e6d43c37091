"""Alembic environment: the schema comes from the app's models (every model is imported)."""

import logging

from alembic import context
from flask import current_app

import app.models  # noqa: F401 - every table must be known to autogenerate
from app import attach_log_handler

config = context.config
# Not alembic.ini's fileConfig: that would configure the root logger. Alembic says which
# migrations it ran at INFO, shown with LOG_LEVEL=INFO; by default only warnings and errors.
for _name in ("alembic", "flask_migrate"):
    attach_log_handler(_name, current_app.config["LOG_LEVEL"] or logging.WARNING)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db
config.set_main_option(
    "sqlalchemy.url", target_db.engine.url.render_as_string(hide_password=False).replace("%", "%%")
)


def run_migrations_offline():
    """Emit SQL to the script output instead of running it."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_db.metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations on the app's engine."""

    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    with target_db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_db.metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
