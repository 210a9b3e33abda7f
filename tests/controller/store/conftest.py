"""Fixtures for the file store tests: a real directory and a real store on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.store.files import FileStore


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "clawpen"


@pytest.fixture
async def store(home: Path) -> AsyncIterator[FileStore]:
    s = FileStore(home)
    yield s
    await s.close()
