"""Liveness and readiness probes for the orchestrator."""
