"""Runs inside `docker build` (as root, no network, maybe no shell): the steps a shell script would do.

`system`: add the agent user and group (uid/gid 10001, controller.plan.AGENT_UID) when missing, create
/data and /workspace owned by it, check the stdlib modules agents rely on import (a missing shared
library in the Debian-packages base fails the build here, not in a user's container), and precompile
the stdlib. `compile DIR`: precompile one tree.

Bytecode uses unchecked-hash pycs: the rootfs is read-only and immutable, so checking sources against
their pycs on every import is wasted start-up time.
"""

import compileall
import os
import py_compile
import sys
import sysconfig

AGENT_UID = 10001
AGENT_NAME = "agent"
HOME = "/workspace"
# Modules whose C extensions need shared libraries from the base: each must import.
REQUIRED_MODULES = (
    "ssl",
    "hashlib",
    "sqlite3",
    "ctypes",
    "lzma",
    "bz2",
    "zlib",
    "uuid",
    "json",
    "asyncio",
    "decimal",
    "pyexpat",
    "readline",
    "curses",
    "socket",
    "select",
)
SKIP_DIRS = ("/test/", "/tests/", "/idlelib/", "/tkinter/", "/turtledemo/", "/lib2to3/", "/ensurepip/")


def _ensure_line(path: str, prefix: str, line: str) -> None:
    existing = open(path).read() if os.path.exists(path) else ""
    if any(entry.startswith(prefix) for entry in existing.splitlines()):
        return
    with open(path, "a") as handle:
        if existing and not existing.endswith("\n"):
            handle.write("\n")
        handle.write(line + "\n")


def ensure_user() -> None:
    _ensure_line("/etc/group", f"{AGENT_NAME}:", f"{AGENT_NAME}:x:{AGENT_UID}:")
    _ensure_line(
        "/etc/passwd",
        f"{AGENT_NAME}:",
        f"{AGENT_NAME}:x:{AGENT_UID}:{AGENT_UID}:Claw Pen agent:{HOME}:/nonexistent",
    )
    for directory in ("/data", HOME):
        os.makedirs(directory, exist_ok=True)
        os.chown(directory, AGENT_UID, AGENT_UID)
        os.chmod(directory, 0o750)
    os.makedirs("/tmp", exist_ok=True)
    os.chmod("/tmp", 0o1777)


def check_modules() -> None:
    missing = []
    for name in REQUIRED_MODULES:
        try:
            __import__(name)
        except ImportError as err:
            missing.append(f"{name} ({err})")
    if missing:
        sys.exit("base image is missing libraries for: " + ", ".join(missing))


# Imported only by an agent with MCP servers (agent/tools/mcp_servers.py): shipped as bytecode alone
# (legacy `module.pyc` beside where the source was). Sources plus bytecode (~5 MB more) would push the
# image past its size budget; sources alone take ~10 s to import on a busy machine.
LAZY_PACKAGES = (
    "mcp",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "jsonschema",
    "jsonschema_specifications",
    "referencing",
    "rpds",
    "attr",
    "attrs",
    "sse_starlette",
    "multipart",
    "python_multipart",
    "jwt",
    "httpx_sse",
    "typing_inspection",
    "annotated_types",
    "dotenv",
)


def sourceless(package: str) -> None:
    """Compile a package in place to legacy .pyc files and drop its .py sources."""
    if not os.path.isdir(package):
        return
    compileall.compile_dir(
        package, quiet=1, workers=0, legacy=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    for directory, _dirs, files in os.walk(package):
        for name in files:
            path = os.path.join(directory, name)
            if name.endswith(".py") and os.path.exists(path + "c"):
                os.remove(path)


def compile_tree(root: str) -> None:
    import re

    skip = [re.escape(d) for d in SKIP_DIRS]
    if root.rstrip("/").endswith("/site"):
        skip += [re.escape(f"{root.rstrip('/')}/{name}/") for name in LAZY_PACKAGES]
        for name in LAZY_PACKAGES:
            sourceless(os.path.join(root, name))
    ok = compileall.compile_dir(
        root,
        quiet=1,
        workers=0,
        rx=re.compile("|".join(skip)),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        # Some third-party trees carry files that are not valid Python 3 (templates, py2 leftovers);
        # they would fail at import anyway, and the ones we import compiled: report, don't fail.
        print(f"note: some files under {root} did not compile", file=sys.stderr)


def install_shell(busybox: str = "/bin/busybox") -> None:
    """/bin/sh and one symlink per busybox applet, where no real program of that name exists."""
    import subprocess

    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for relative in applets:
        name = os.path.basename(relative)
        if any(os.path.lexists(os.path.join(d, name)) for d in ("/usr/local/bin", "/usr/bin", "/bin")):
            continue
        if name in ("python", "python3"):
            continue
        os.symlink(busybox, os.path.join("/usr/local/bin", name))
    if not os.path.lexists("/bin/sh"):
        os.symlink(busybox, "/bin/sh")
    subprocess.run(["/bin/sh", "-c", "echo ok >/dev/null && ls / >/dev/null"], check=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["shell"]:
        os.makedirs("/usr/local/bin", exist_ok=True)
        install_shell()
    elif argv[:1] == ["system"]:
        ensure_user()
        check_modules()
        compile_tree(sysconfig.get_paths()["stdlib"])
    elif argv[:1] == ["compile"] and len(argv) == 2:
        compile_tree(argv[1])
    else:
        sys.exit("usage: setup_image.py system | shell | compile DIR")


if __name__ == "__main__":
    main(sys.argv[1:])
