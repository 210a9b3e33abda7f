"""One-line, secret-free messages for any error a user can cause or meet."""

from __future__ import annotations

import docker.errors

from controller.resources import ManifestError
from controller.runtime.base import RuntimeError_
from controller.store.base import StoreError


def user_message(err: BaseException) -> str:
    if isinstance(err, ManifestError | StoreError | RuntimeError_):
        return str(err)
    if isinstance(err, docker.errors.DockerException):
        return f"Docker engine: {err}".splitlines()[0]
    if isinstance(err, FileNotFoundError):
        return f"no such file: {err.filename}"
    if isinstance(err, PermissionError):
        return f"permission denied: {err.filename}"
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text
