"""API keys for the HTTP API: :mod:`service` (issue, authenticate, revoke, stored as keyed hashes),
:mod:`actions` (the audited issue and revoke every entry point calls), :mod:`bootstrap` (one key per role
for the demo and tests), :mod:`controllers` (``whoami``)."""
