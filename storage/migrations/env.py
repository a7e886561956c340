"""Alembic environment: runs on the connection storage.db.migrate hands over."""

from alembic import context

from storage.db import load_all_models
from storage.models import Base

load_all_models()

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `bot.py migrate` (storage.db.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
