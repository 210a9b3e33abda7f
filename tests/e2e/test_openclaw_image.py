"""The OpenClaw image: cached by its inputs, non-root, and carrying what OpenClaw's tools need.

Uses the image `make openclaw-image` built (or builds it: minutes, once per machine).
"""

from __future__ import annotations

from typing import Any

import pytest

from controller.programs.images import LABEL_INPUTS, build_openclaw_image
from controller.programs.openclaw import NODE_VERSION, OPENCLAW_VERSION

pytestmark = [pytest.mark.docker, pytest.mark.openclaw, pytest.mark.timeout(900)]


def test_second_build_is_a_cache_hit_and_the_image_has_node_openclaw_and_a_shell(docker_client: Any) -> None:
    build_openclaw_image(client=docker_client, progress=lambda line: None)
    lines: list[str] = []
    tag, built = build_openclaw_image(client=docker_client, progress=lines.append)
    assert not built and any("up to date" in line for line in lines), lines
    image = docker_client.images.get(tag)
    assert image.labels[LABEL_INPUTS] and image.attrs["Config"]["User"] == "10001:10001"
    script = (
        "node --version; id -u; ls /bin/ls >/dev/null && echo coreutils;"
        " node -p \"require('/opt/openclaw/node_modules/openclaw/package.json').version\""
    )
    out = docker_client.containers.run(
        tag, entrypoint=["/bin/sh", "-c", script], remove=True, network_mode="none", read_only=True
    )
    assert out.decode().split() == [f"v{NODE_VERSION}", "10001", "coreutils", OPENCLAW_VERSION]
