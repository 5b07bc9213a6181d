"""All SQL tables. Alembic migrations in alembic/versions are generated from this metadata."""

from sqlmodel import SQLModel

metadata = SQLModel.metadata
