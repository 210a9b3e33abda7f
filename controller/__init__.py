"""Claw Pen controller: resources, stores, runtimes, reconcile, CLI."""

__version__ = "0.1.0"
