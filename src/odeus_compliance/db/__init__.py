"""Storage: the async engine, the ORM models and the Alembic migrations that create them.

The same models and migrations serve SQLite (the embedded default) and PostgreSQL (several replicas).
"""
