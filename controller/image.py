"""Build the agent image `clawpen/agent:<version>` without needing an image registry.

No registry is reachable on the machines Claw Pen targets first (air-gapped hosts, CI sandboxes), so
the default path makes its own base: Python 3.11 and the shared libraries it links, taken from the
host's Debian archive with `apt-get download`, unpacked with `dpkg-deb -x` and `docker import`ed
(controller.image_base). The agent program's wheels are installed on the host into a staging dir
(`pip install --target`, from the package index or `--no-index` from a wheel dir) and copied in, so
`docker build` runs with `--network none`. When `python:3.11-slim` is present (or asked for with
`--base`, and pullable) it is used as the base instead.

Every input (Dockerfile, agent sources, requirements, the base image's id) is hashed into a label:
when nothing changed, a build is one `docker inspect` — `make test` calls it before every run.
"""

from __future__ import annotations

import fcntl
import hashlib
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from controller import __version__
from controller.image_base import (
    ImageBuildError,
    Progress,
    cache_root,
    deb_cache,
    docker_client,
    ensure_debian_base,
)
from controller.runtime.podman import find_image
from controller.settings import REPO_ROOT

LABEL_INPUTS = "clawpen.dev/image-inputs"
LABEL_VERSION = "clawpen.dev/version"
SLIM_BASE = "python:3.11-slim"
IMAGE_FILES_DIR = REPO_ROOT / "templates" / "image"
AGENT_DIR = REPO_ROOT / "agent"
PYTHON_VERSION = "3.11"

__all__ = ["BuildResult", "ImageBuildError", "build_agent_image", "image_inputs_hash"]


@dataclass(frozen=True)
class BuildResult:
    image: str
    image_id: str
    size_mb: float
    built: bool  # False: an image with the same inputs was already there
    base: str


def _source_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def image_inputs_hash(base_id: str, extra: Iterable[str] = ()) -> str:
    """Hash of everything the image is made of; equal hash → the existing image is reused."""
    digest = hashlib.sha256()
    for part in (__version__, base_id, platform.machine(), *extra):
        digest.update(part.encode() + b"\0")
    for root in (IMAGE_FILES_DIR, AGENT_DIR):
        for path in _source_files(root):
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def _pip_platforms() -> list[str]:
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    # manylinux_2_36 is bookworm's glibc; pip does not expand a platform to older tags by itself.
    return [f"manylinux_2_{minor}_{arch}" for minor in (36, 34, 31, 28)] + [
        f"manylinux2014_{arch}",
        f"manylinux2010_{arch}",
        f"manylinux1_{arch}",
        f"linux_{arch}",
    ]


def _pip_cmd(staging: Path, wheel_dir: Path | None) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(staging),
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
    ]
    for tag in _pip_platforms():
        cmd += ["--platform", tag]
    if wheel_dir is not None:
        cmd += ["--no-index", "--find-links", str(wheel_dir)]
    return cmd


def stage_site_packages(requirements: Path, wheel_dir: Path | None, progress: Progress) -> Path:
    """pip-install the agent's requirements for the image's Python into a cached dir on the host.

    `requirements-nodeps.txt` beside it (when present) is installed without its declared
    dependencies: the MCP SDK's client needs a few of them, its server and OAuth extras pull in
    cryptography (16 MB) that the agent never imports; requirements.txt lists the ones it uses."""
    nodeps = requirements.with_name("requirements-nodeps.txt")
    reqs = requirements.read_bytes() + (nodeps.read_bytes() if nodeps.exists() else b"")
    key = hashlib.sha256(reqs + str(wheel_dir).encode() + platform.machine().encode()).hexdigest()[:16]
    target = cache_root() / "site" / key
    if (target / ".complete").exists():
        progress(f"agent requirements: reusing {target}")
        return target
    progress(f"agent requirements: installing wheels for Python {PYTHON_VERSION} into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=target.parent))
    cmd = _pip_cmd(staging, wheel_dir) + ["-r", str(requirements)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 0 and nodeps.exists():
        nodeps_cmd = _pip_cmd(staging, wheel_dir) + ["--no-deps", "-r", str(nodeps)]
        proc = subprocess.run(nodeps_cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        errors = [
            line for line in proc.stderr.splitlines() if line.startswith("ERROR")
        ] or proc.stderr.splitlines()
        hint = (
            ""
            if wheel_dir
            else "; for an offline build pass --wheels DIR (a `pip download` of the requirements)"
        )
        raise ImageBuildError(f"pip could not install {requirements.name}: {(errors or ['?'])[-1]}{hint}")
    # Console scripts point at the host's interpreter: useless in the image. Test suites and
    # pydantic's v1 compatibility copy are never imported by the agent: size the image does not need.
    for junk in ("bin", "pydantic/v1", "jsonschema/tests", "jsonschema/benchmarks", "rpds/tests"):
        shutil.rmtree(staging / junk, ignore_errors=True)
    (staging / ".complete").write_text("")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


SHELL_PACKAGE = "busybox"


def _candidate(package: str) -> str:
    if shutil.which("apt-cache") is None:
        return ""
    proc = subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True)
    return next((ln.split(": ", 1)[1] for ln in proc.stdout.splitlines() if ln.startswith("Version: ")), "")


def stage_shell(progress: Progress) -> Path:
    """Debian's busybox (sh and the coreutils applets, 0.8 MB) for run_command, from the deb cache or
    `apt-get download`ed into it like the base's packages; unpacked, returned as the binary's path.
    Debian's coreutils + dash would cost ~9 MB of the ~60 MB image budget for the same commands."""
    dest = deb_cache()
    dest.mkdir(parents=True, exist_ok=True)
    version = _candidate(SHELL_PACKAGE)
    if not version and not sorted(dest.glob(f"{SHELL_PACKAGE}_*.deb")) and shutil.which("apt-get"):
        progress("shell: apt-get update (package lists missing)")
        subprocess.run(["apt-get", "update", "-q"], capture_output=True)
        version = _candidate(SHELL_PACKAGE)
    pattern = f"{SHELL_PACKAGE}_{version.replace(':', '%3a')}_*.deb" if version else f"{SHELL_PACKAGE}_*.deb"
    found = sorted(dest.glob(pattern))
    if not found and version:
        progress(f"shell: apt-get download {SHELL_PACKAGE}={version} into {dest}")
        subprocess.run(["apt-get", "download", f"{SHELL_PACKAGE}={version}"], cwd=dest, capture_output=True)
        found = sorted(dest.glob(pattern))
    if not found:
        raise ImageBuildError(
            f"no {SHELL_PACKAGE} .deb in {dest} and apt-get could not download one "
            "(the agent image needs a shell for run_command)"
        )
    unpacked = cache_root() / "shell" / found[-1].stem
    if not (unpacked / "bin" / "busybox").exists():
        unpacked.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(unpacked)], capture_output=True, text=True)
        if result.returncode != 0:
            raise ImageBuildError(f"dpkg-deb -x {found[-1].name} failed: {result.stderr.strip()}")
    return unpacked / "bin" / "busybox"


def _pick_base(client: docker.DockerClient, base: str | None, progress: Progress) -> str:
    """Return the reference of the base image to build FROM, making or pulling it when needed."""
    if base is None:
        try:
            find_image(client, SLIM_BASE)
            return SLIM_BASE
        except docker.errors.ImageNotFound:
            return ensure_debian_base(client, progress)
    try:
        find_image(client, base)
        return base
    except docker.errors.ImageNotFound:
        pass
    progress(f"base {base}: not present locally, pulling")
    try:
        client.images.pull(base)
    except docker.errors.APIError as err:
        raise ImageBuildError(
            f"base image {base!r} is not present and cannot be pulled ({err.explanation or err}); "
            "omit --base to build offline from Debian packages"
        ) from None
    return base


def _stage_context(site: Path, shell: Path) -> Path:
    context = Path(tempfile.mkdtemp(prefix="clawpen-image-"))
    (context / "shell").mkdir()
    shutil.copy2(shell, context / "shell" / "busybox")
    shutil.copy2(IMAGE_FILES_DIR / "Dockerfile", context / "Dockerfile")
    shutil.copy2(IMAGE_FILES_DIR / "setup_image.py", context / "setup_image.py")
    shutil.copytree(site, context / "site", ignore=shutil.ignore_patterns(".complete"))
    shutil.copytree(AGENT_DIR, context / "agent", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return context


def _run_build(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    base_ref: str,
    labels: dict[str, str],
    progress: Progress,
    no_cache: bool,
) -> str:
    image_id = ""
    last_error = ""
    for chunk in client.api.build(
        path=str(context),
        tag=tag,
        buildargs={"BASE": base_ref},
        labels=labels,
        network_mode="none",
        rm=True,
        forcerm=True,
        pull=False,
        nocache=no_cache,
        decode=True,
    ):
        if "stream" in chunk:
            line = chunk["stream"].rstrip()
            if line.startswith("Step "):
                progress(f"  {line}")
        if "error" in chunk:
            last_error = str(chunk["error"]).strip()
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    if last_error or not image_id:
        raise ImageBuildError(f"docker build of {tag} failed: {last_error or 'no image produced'}")
    return image_id


def build_agent_image(
    tag: str,
    *,
    client: docker.DockerClient | None = None,
    force: bool = False,
    base: str | None = None,
    wheel_dir: Path | None = None,
    progress: Progress = print,
) -> BuildResult:
    """Make sure `tag` is an up-to-date agent image; build it when its inputs changed or when forced.

    `force` rebuilds the agent image without Docker's layer cache; the base is remade only when its
    recipe changed (it is shared by every agent image tag on the engine).

    Serialised by a lock file: parallel test sessions and `make` runs share one cache and one engine.
    """
    client = client or docker_client()
    lock_path = cache_root() / "build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(tag, client, force, base, wheel_dir, progress)


def _build_locked(
    tag: str,
    client: docker.DockerClient,
    force: bool,
    base: str | None,
    wheel_dir: Path | None,
    progress: Progress,
) -> BuildResult:
    base_ref = _pick_base(client, base, progress)
    base_id = find_image(client, base_ref).id
    requirements = AGENT_DIR / "requirements.txt"
    shell = stage_shell(progress)
    inputs = image_inputs_hash(base_id, extra=(shell.parent.parent.name,))
    previous_id: str | None = None
    try:
        current = find_image(client, tag)
        previous_id = current.id
        if not force and (current.labels or {}).get(LABEL_INPUTS) == inputs:
            progress(f"{tag}: up to date ({_size_mb(current):.1f} MB)")
            return BuildResult(tag, current.id, _size_mb(current), built=False, base=base_ref)
    except docker.errors.ImageNotFound:
        pass

    site = stage_site_packages(requirements, wheel_dir, progress)
    context = _stage_context(site, shell)
    try:
        progress(f"{tag}: building from {base_ref} (docker build --network none)")
        image_id = _run_build(
            client,
            context,
            tag,
            base_ref,
            {LABEL_INPUTS: inputs, LABEL_VERSION: __version__},
            progress,
            force,
        )
    finally:
        shutil.rmtree(context, ignore_errors=True)
    image = find_image(client, image_id)
    if previous_id and previous_id != image.id:
        _remove_if_dangling(client, previous_id)
    progress(f"{tag}: built {image.short_id} ({_size_mb(image):.1f} MB)")
    return BuildResult(tag, image.id, _size_mb(image), built=True, base=base_ref)


def _size_mb(image: docker.models.images.Image) -> float:
    return float(image.attrs.get("Size", 0)) / 1e6


def _remove_if_dangling(client: docker.DockerClient, image_id: str) -> None:
    """Drop the image this build replaced, unless it is still tagged elsewhere or used by a container."""
    try:
        if not find_image(client, image_id).tags:
            client.images.remove(image_id)
    except docker.errors.APIError:
        pass  # in use by a container: docker keeps it, and so do we
