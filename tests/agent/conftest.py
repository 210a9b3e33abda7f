"""Fixtures for the agent tests: the fake model server (module-scoped, reset per test)."""

from tests.fakes.model_server import fake_model, fake_model_server  # noqa: F401 - re-exported fixtures
