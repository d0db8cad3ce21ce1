"""API keys for the HTTP API: issue, authenticate, revoke."""
