"""The read-only HTTP gateway on :8000: the live dashboard, JSON views, server-sent events, Prometheus metrics."""
