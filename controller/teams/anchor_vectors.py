"""Anchor vectors on disk, per encoder: a restart or a one-shot `clawpen team classify` does not re-embed.

Why: the shipped teams carry ~100 examples per intent, about a thousand anchor texts in all; at a few
milliseconds each, embedding them is seconds of CPU that every gateway start (on its first team
message) and every CLI classify would otherwise pay again, for vectors that never change: the same
model turns the same text into the same vector.

Shape: one NumPy `.npz` per encoder identity (the int8 model's pinned sha256, or the float32 package
version), so vectors of another model are never mixed in; keys are a hash of the text, so the file
holds no message or example text. A missing, unreadable or foreign file is an empty cache (the
vectors are recomputed and the file rewritten), never an error. Writes are atomic (temporary file,
then rename), so a crash mid-write leaves the old file or none.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from controller.settings import Settings

log = logging.getLogger(__name__)
Vector = npt.NDArray[np.float32]
SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def anchor_vectors_dir(settings: Settings) -> Path:
    return settings.home / ".state" / "anchor-vectors"


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class VectorFile:
    """hash(text) -> vector for one encoder, in `directory`/<encoder identity>.npz."""

    def __init__(self, directory: Path, identity: str) -> None:
        self.path = directory / f"{SAFE.sub('_', identity)}.npz"

    def load(self) -> dict[str, Vector]:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
                if keys.ndim != 1 or vectors.ndim != 2 or len(keys) != len(vectors):
                    raise ValueError(f"shapes {keys.shape} and {vectors.shape} do not match")
                return {str(k): v.astype(np.float32) for k, v in zip(keys, vectors, strict=True)}
        except FileNotFoundError:
            return {}
        except Exception as exc:  # noqa: BLE001 - any unreadable file is an empty cache, rebuilt on save
            log.warning("ignoring the unreadable anchor vector cache %s (%s); it will be rebuilt", self.path, exc)
            return {}

    def save(self, vectors: dict[str, Vector]) -> None:
        if not vectors:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".anchors-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, keys=np.array(list(vectors)), vectors=np.stack(list(vectors.values())))
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:  # a read-only or full disk costs only the re-embedding next time
            log.warning("could not write the anchor vector cache %s: %s", self.path, exc)
