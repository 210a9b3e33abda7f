"""A gateway in its own process (file store, no container engine), for tests that measure the process:
`python -m tests.api.gateway_process HOME PORTFILE` prints nothing, writes its port to PORTFILE."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.api.conftest import PASSWORD, UnreachableRuntime, make_catalog, make_settings, make_store
from tests.api.harness import ServerThread


def main() -> None:
    from api.app import create_app

    home, port_file = Path(sys.argv[1]), Path(sys.argv[2])
    settings = make_settings(home)
    app = create_app(
        settings, make_store(settings), UnreachableRuntime(), make_catalog(settings),
        env={"CLAWPEN_ADMIN_PASSWORD": PASSWORD},
    )
    server = ServerThread(app).start()
    port_file.write_text(str(server.port))
    server._thread.join()


if __name__ == "__main__":
    main()
