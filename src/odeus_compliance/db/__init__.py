"""Storage: :mod:`engine` (SQLite or PostgreSQL), :mod:`models`, :mod:`schedule_tables` and
:mod:`denial_tables` (the ORM tables, one metadata), :mod:`migrate` and ``migrations/`` (Alembic). The same
models and migrations serve SQLite (the embedded default) and PostgreSQL (several replicas)."""
