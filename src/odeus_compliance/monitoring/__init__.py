"""``GET /metrics``: the service's Prometheus metrics (see docs/monitoring.md)."""
