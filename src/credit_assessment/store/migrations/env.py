"""Alembic environment: the connection is handed in by credit_assessment.store.schema."""

from __future__ import annotations

from alembic import context

from credit_assessment.store.tables import metadata

connection = context.config.attributes.get("connection")


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    if connection is None:
        raise RuntimeError("migrations run through credit_assessment.store.schema.upgrade()")
    context.configure(
        connection=connection, target_metadata=metadata, transaction_per_migration=True
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
