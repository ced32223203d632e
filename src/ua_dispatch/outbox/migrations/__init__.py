"""Alembic migrations of the outbox, shipped inside the package."""
