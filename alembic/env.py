"""Alembic environment: the app's own metadata and DATABASE_URL (or a connection handed in by tests)."""

from logging.config import fileConfig

from alembic import context

from projectalgo.db import make_engine
from projectalgo.models import metadata
from projectalgo.settings import load_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations() -> None:
    url = config.attributes.get("database_url") or load_settings().database_url
    engine = make_engine(url)
    with engine.connect() as connection:
        # render_as_batch lets ALTER TABLE work on SQLite.
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Hosts started together migrate one at a time; the later ones find nothing left to do.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7140230871)")
            context.run_migrations()
    engine.dispose()


run_migrations()
