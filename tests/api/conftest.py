"""Fixtures: a real gateway (uvicorn on 127.0.0.1, real files under a temporary CLAWPEN_HOME)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from controller.settings import Settings
from tests.api.harness import ServerThread

PASSWORD = "correct horse battery staple"


def make_settings(home: Path, **overrides: Any) -> Settings:
    return Settings(home=home, **{"instance": f"t-{uuid.uuid4().hex[:8]}", **overrides})


def make_store(settings: Settings) -> Any:
    from controller.wiring import open_store

    return open_store(settings)  # the file store under the test's temporary CLAWPEN_HOME


class UnreachableRuntime:
    """A runtime whose engine is down: what the gateway meets when Docker is not running."""

    name = "docker"

    async def version(self, *args: Any) -> str:
        from controller.runtime.base import RuntimeUnavailable

        raise RuntimeUnavailable("cannot reach the Docker engine at unix:///nonexistent.sock")

    observe = list_owned = stats = version

    async def remove(self, key: str, *, volumes: bool = False) -> None:
        await self.version()

    start = stop = remove

    def logs(self, key: str, *, tail: int | None = 100, follow: bool = False) -> Any:
        async def gen() -> Any:
            await self.version()
            yield

        return gen()

    async def close(self) -> None:
        pass


def make_catalog(settings: Settings) -> Any:
    from controller.wiring import open_catalog

    return open_catalog(settings)


def start_gateway(home: Path, runtime: Any = None, env: dict[str, str] | None = None, **overrides: Any) -> ServerThread:
    settings = make_settings(home, **overrides)
    app = create_app(
        settings,
        make_store(settings),
        runtime or UnreachableRuntime(),
        make_catalog(settings),
        env={"CLAWPEN_ADMIN_PASSWORD": PASSWORD} if env is None else env,
    )
    return ServerThread(app).start()


def login(base_url: str, password: str = PASSWORD) -> dict[str, Any]:
    answer = httpx.post(f"{base_url}/auth/login", json={"password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    server = start_gateway(tmp_path_factory.mktemp("home"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(gateway: ServerThread) -> dict[str, Any]:
    return login(gateway.url)


@pytest.fixture(scope="module")
def client(gateway: ServerThread, tokens: dict[str, Any]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=10) as c:
        yield c
