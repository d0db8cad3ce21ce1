"""Storage: :mod:`engine` (SQLite or PostgreSQL), :mod:`models` and :mod:`schedule_tables` (the ORM tables,
one metadata), :mod:`migrate` and ``migrations/`` (Alembic). The same models and migrations serve SQLite
(the embedded default) and PostgreSQL (several replicas)."""
