"""Kubernetes-specific parts of Claw Pen: object builders (pure) and API helpers."""
