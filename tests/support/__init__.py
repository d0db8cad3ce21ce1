"""Reusable test helpers: a real uvicorn server on loopback, PostgreSQL scratch databases."""
