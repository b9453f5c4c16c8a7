"""Alembic environment: always run with a connection handed over by :class:`tenure.store.Store`."""

from alembic import context

from tenure.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `tenure migrate` (tenure.store.Store.upgrade)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
