"""A Python base image made from the host's Debian packages: `clawpen/base-python:3.11`.

With no registry to pull `python:3.11-slim` from, the packages are the one source of a trusted
Python we have: `apt-get download` the interpreter and exactly the shared libraries its stdlib
extensions link (found with ldd over lib-dynload; nis and dbm are left out: they would drag in
Kerberos and Berkeley DB for modules no agent uses), unpack them with `dpkg-deb -x` (no maintainer
scripts run, so we do their work: the CA bundle, the python3 link), and `docker import` the tree.
The result is labelled with a hash of the recipe — the exact package versions apt's lists name, so a
security update (after `apt-get update`) makes a new base — and reused until that changes. The .debs
are cached under $XDG_CACHE_HOME/clawpen/debs, so an air-gapped host with a warm cache needs neither
network nor package lists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from controller.runtime.base import RuntimeError_, RuntimeUnavailable
from controller.runtime.engine import engine_client
from controller.runtime.podman import find_image

Progress = Callable[[str], None]

BASE_REPOSITORY = "clawpen/base-python"
BASE_TAG = "3.11"
BASE_IMAGE = f"{BASE_REPOSITORY}:{BASE_TAG}"
LABEL_RECIPE = "clawpen.dev/base-recipe"
RECIPE_VERSION = "3"

DEBIAN_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "libgcc-s1",
    "libcrypt1",
    "zlib1g",
    "libssl3",
    "libffi8",
    "libexpat1",
    "libbz2-1.0",
    "liblzma5",
    "libsqlite3-0",
    "libuuid1",
    "libncursesw6",
    "libtinfo6",
    "libreadline8",
    "readline-common",
    "media-types",
    "netbase",
    "ca-certificates",
)
# Documentation, translations and iconv modules: Python's codecs never use glibc's gconv.
PRUNE = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/share/readline",
    "usr/lib/x86_64-linux-gnu/gconv",
    "usr/lib/aarch64-linux-gnu/gconv",
    "usr/share/ca-certificates",
    "usr/sbin",
    "sbin",
    "usr/lib/python3.11/pydoc_data",
)
PASSWD = (
    "root:x:0:0:root:/root:/nonexistent\nagent:x:10001:10001:Claw Pen agent:/workspace:/nonexistent\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n"
)
GROUP = "root:x:0:\nagent:x:10001:\nnogroup:x:65534:\n"
NSSWITCH = (
    "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n"
    "protocols: files\nservices: files\n"
)


class ImageBuildError(RuntimeError_):
    def __init__(self, message: str):
        super().__init__(message, reason="ImageBuildFailed")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clawpen"


def docker_client() -> docker.DockerClient:
    try:
        client = engine_client()
        client.ping()
        return client
    except docker.errors.DockerException as err:
        raise RuntimeUnavailable(f"cannot reach the Docker engine: {str(err).splitlines()[0]}") from None


def recipe_hash(versions: dict[str, str]) -> str:
    """Hash of what the base is made of: the exact package versions and how they are put together."""
    packages = [f"{name}={versions.get(name, '')}" for name in DEBIAN_PACKAGES]
    blob = "\n".join((RECIPE_VERSION, *packages, "--", *PRUNE, PASSWD, GROUP, NSSWITCH))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def candidate_versions() -> dict[str, str] | None:
    """Each package's candidate version from the local apt lists (no network); None when unknown."""
    if shutil.which("apt-cache") is None:
        return None
    proc = _run(["apt-cache", "show", "--no-all-versions", *DEBIAN_PACKAGES])
    versions: dict[str, str] = {}
    package = ""
    for line in proc.stdout.splitlines():
        if line.startswith("Package: "):
            package = line.split(": ", 1)[1].strip()
        elif line.startswith("Version: ") and package:
            versions.setdefault(package, line.split(": ", 1)[1].strip())
    return versions if proc.returncode == 0 and set(versions) >= set(DEBIAN_PACKAGES) else None


def _deb_file(dest: Path, package: str, version: str) -> Path | None:
    found = sorted(dest.glob(f"{package}_{version.replace(':', '%3a')}_*.deb"))
    return found[-1] if found else None


def _cached_versions(dest: Path) -> dict[str, str] | None:
    """Versions of the debs already in the cache (an air-gapped host with a warm cache needs no lists)."""
    versions = {}
    for package in DEBIAN_PACKAGES:
        found = sorted(dest.glob(f"{package}_*.deb"))
        if not found:
            return None
        versions[package] = found[-1].name.split("_")[1].replace("%3a", ":")
    return versions


def _apt_update(progress: Progress) -> None:
    progress("base: apt-get update (package lists missing or stale)")
    _run(["apt-get", "update", "-q"])


def deb_cache() -> Path:
    return cache_root() / "debs"


def resolve_versions(progress: Progress) -> dict[str, str]:
    """The versions the base should be made of: apt's candidates, else what the cache holds."""
    versions = candidate_versions() or _cached_versions(deb_cache())
    if versions is None:
        _apt_update(progress)
        versions = candidate_versions()
    if versions is None:
        raise ImageBuildError(
            "apt knows no candidate for the base's packages (" + ", ".join(DEBIAN_PACKAGES[:3]) + ", ...); "
            "check the apt sources, or pass --base IMAGE with a Python 3.11 image"
        )
    return versions


def download_debs(versions: dict[str, str], progress: Progress) -> tuple[list[Path], dict[str, str]]:
    """The recipe's .deb files from the cache, or `apt-get download`ed into it (updating lists once
    when the mirror no longer has a version the lists name). Returns the files and their versions."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise ImageBuildError(
            "building the offline base needs apt-get and dpkg-deb (a Debian/Ubuntu host); "
            "or pass --base IMAGE with a Python 3.11 image"
        )
    dest = deb_cache()
    dest.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        missing = [p for p in DEBIAN_PACKAGES if _deb_file(dest, p, versions[p]) is None]
        if not missing:
            break
        progress(f"base: apt-get download {len(missing)} packages into {dest}")
        proc = _run(["apt-get", "download", *(f"{p}={versions[p]}" for p in missing)], cwd=dest)
        if proc.returncode == 0:
            continue
        if attempt == 2:
            errors = [
                ln for ln in proc.stderr.splitlines() if ln.startswith("E:")
            ] or proc.stderr.splitlines()
            raise ImageBuildError(f"apt-get download failed: {(errors or ['?'])[-1]}")
        _apt_update(progress)
        versions = candidate_versions() or versions
    debs = []
    for package in DEBIAN_PACKAGES:
        deb = _deb_file(dest, package, versions[package])
        if deb is None:
            raise ImageBuildError(f"apt-get download did not produce {package}={versions[package]}")
        debs.append(deb)
    return debs, versions


def make_rootfs(debs: list[Path], rootfs: Path) -> None:
    """Unpack the packages and do what their maintainer scripts would have done."""
    for deb in debs:
        proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(rootfs)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageBuildError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()}")
    certs = sorted((rootfs / "usr/share/ca-certificates").rglob("*.crt"))
    (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/ssl/certs/ca-certificates.crt").write_bytes(b"".join(c.read_bytes() for c in certs))
    for relative in PRUNE:
        shutil.rmtree(rootfs / relative, ignore_errors=True)
    # OpenSSL looks under its OPENSSLDIR (the `openssl` package, not unpacked, links these).
    (rootfs / "usr/lib/ssl").mkdir(parents=True, exist_ok=True)
    (rootfs / "usr/lib/ssl/certs").symlink_to("/etc/ssl/certs")
    (rootfs / "usr/lib/ssl/cert.pem").symlink_to("/etc/ssl/certs/ca-certificates.crt")
    (rootfs / "usr/bin/python3").symlink_to("python3.11")
    (rootfs / "usr/bin/python").symlink_to("python3.11")
    (rootfs / "etc/passwd").write_text(PASSWD)
    (rootfs / "etc/group").write_text(GROUP)
    (rootfs / "etc/nsswitch.conf").write_text(NSSWITCH)
    for directory, mode in (
        ("tmp", 0o1777),
        ("root", 0o700),
        ("data", 0o750),
        ("workspace", 0o750),
        ("run", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
    ):
        (rootfs / directory).mkdir(exist_ok=True)
        (rootfs / directory).chmod(mode)


def _owner_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Extracted as whoever runs the build; in the image everything is root's except the agent's dirs.
    agent_owned = info.name.rstrip("/") in ("./data", "./workspace")
    info.uid = info.gid = 10001 if agent_owned else 0
    info.uname = info.gname = "" if agent_owned else "root"
    return info


def ensure_debian_base(client: docker.DockerClient, progress: Progress, *, force: bool = False) -> str:
    """Return BASE_IMAGE, importing it first unless an image with this recipe already exists."""
    versions = resolve_versions(progress)
    wanted = recipe_hash(versions)
    try:
        existing = find_image(client, BASE_IMAGE)
        if not force and (existing.labels or {}).get(LABEL_RECIPE) == wanted:
            progress(f"base: {BASE_IMAGE} up to date")
            return BASE_IMAGE
    except docker.errors.ImageNotFound:
        pass
    debs, versions = download_debs(versions, progress)
    wanted = recipe_hash(versions)
    with tempfile.TemporaryDirectory(prefix="clawpen-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        progress(f"base: unpacking {len(debs)} Debian packages")
        make_rootfs(debs, rootfs)
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".", filter=_owner_filter)
        progress(f"base: docker import as {BASE_IMAGE}")
        client.api.import_image_from_file(
            str(archive),
            # name and tag in one: Podman's compat API ignores a separate `tag` (stores `latest`)
            repository=f"{BASE_REPOSITORY}:{BASE_TAG}",
            changes=[
                f"LABEL {LABEL_RECIPE}={wanted}",
                "ENV PATH=/usr/local/bin:/usr/bin:/bin",
                "ENV LANG=C.UTF-8",
                'CMD ["python3"]',
            ],
        )
    return BASE_IMAGE
