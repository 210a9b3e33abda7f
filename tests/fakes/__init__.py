"""Fakes of external services the tests may not reach for real (only model-provider APIs)."""
