"""Hole 8: an archive handed to import must not make the gateway read a huge header into memory.

tarfile reads a whole pax extended header (or GNU long name) into memory before looking at it; a
200 MiB header cost 739 MiB. Headers are now bounded (1 MiB) and refused before they are read, and
the whole archive is bounded by CLAWPEN_IMPORT_MAX_BYTES (413 when over).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import login, start_gateway
from tests.api.harness import ServerThread
from tests.security.test_chat_inbox import rss_mb

HEADER_BYTES = 64 * 1024 * 1024


def pax_bomb(path: Path, content_bytes: int) -> None:
    """A tar whose first member is a pax header of `content_bytes`, written without holding it in memory."""
    base = len(" comment=") + content_bytes + 1
    length = base + len(str(base))
    if len(str(length)) != len(str(base)):
        length = base + len(str(length))
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = length
    with path.open("wb") as fh:
        fh.write(header.tobuf(format=tarfile.USTAR_FORMAT))
        fh.write(f"{length} comment=".encode())
        chunk = b"x" * (1 << 20)
        left = content_bytes
        while left:
            fh.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
        fh.write(b"\n")
        fh.write(b"\0" * (-length % 512))
        member = tarfile.TarInfo("manifest.json")
        member.size = 2
        fh.write(member.tobuf(format=tarfile.USTAR_FORMAT) + b"{}" + b"\0" * 510 + b"\0" * 1024)


@pytest.fixture(scope="module")
def small_limit_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, dict[str, str]]]:
    server = start_gateway(tmp_path_factory.mktemp("home"), import_max_bytes=HEADER_BYTES * 2)
    headers = {"Authorization": f"Bearer {login(server.url)['access_token']}"}
    yield server, headers
    server.stop()


def test_a_huge_pax_header_is_refused_without_reading_it(
    small_limit_gateway: tuple[ServerThread, dict[str, str]], tmp_path: Path
) -> None:
    server, headers = small_limit_gateway
    bomb = tmp_path / "bomb.tar"
    pax_bomb(bomb, HEADER_BYTES)
    before = rss_mb()
    with bomb.open("rb") as fh:
        answer = httpx.post(f"{server.url}/api/agents/import", content=fh, headers=headers, timeout=120)
    growth = rss_mb() - before
    assert growth < 40, f"the gateway grew {growth:.0f} MiB reading a {HEADER_BYTES >> 20} MiB header"
    assert answer.status_code == 422, answer.text
    assert "header" in answer.json()["error"], answer.text


def test_an_archive_over_the_size_setting_is_413(
    small_limit_gateway: tuple[ServerThread, dict[str, str]], tmp_path: Path
) -> None:
    server, headers = small_limit_gateway
    big = tmp_path / "big.tar"
    with big.open("wb") as fh:
        fh.truncate(HEADER_BYTES * 2 + 4096)
    with big.open("rb") as fh:
        answer = httpx.post(f"{server.url}/api/agents/import", content=fh, headers=headers, timeout=120)
    assert answer.status_code == 413, answer.text
    assert "CLAWPEN_IMPORT_MAX_BYTES" in answer.json()["error"]
