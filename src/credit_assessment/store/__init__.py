"""Persistence: PostgreSQL through SQLAlchemy Core (psycopg 3), migrations with Alembic."""
