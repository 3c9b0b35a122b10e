"""Prometheus metrics of a node or of a whole deployment, from the metrics snapshots the nodes
publish (see docs/architecture.md, "Prometheus metrics")."""
