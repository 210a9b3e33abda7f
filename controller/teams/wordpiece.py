"""BERT's uncased WordPiece tokenizer in plain Python, for the semantic router's MiniLM encoder.

Why not the `tokenizers` package: it pulls in huggingface-hub (a client of the very model hub the router
must never touch) for what is ~60 lines of well-specified text splitting. Team messages are a sentence or
two, so a pure-Python pass costs tens of microseconds next to the model's forward pass.

It follows BERT's BasicTokenizer + WordpieceTokenizer exactly as the model was trained with them
(`do_lower_case=True`, accents stripped, CJK characters split, punctuation split, greedy longest-match
word pieces with the "##" continuation prefix, [UNK] for words longer than 100 characters or without a
segmentation). tests/controller/teams/test_semantic.py checks it against ids the model's own tokenizer
produced.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

MAX_WORD_CHARS = 100


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


def _clean(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        cat = unicodedata.category(ch)
        if ch in " \t\n\r" or cat == "Zs":
            out.append(" ")
        elif cat.startswith("C"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


def basic_tokens(text: str) -> list[str]:
    """Lowercased, accent-stripped words with every punctuation character split off on its own."""
    tokens: list[str] = []
    for word in _clean(text).lower().split():
        word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    tokens.append(current)
                tokens.append(ch)
                current = ""
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


class WordPiece:
    """Text -> token ids with [CLS] ... [SEP], truncated to `max_length` ids."""

    def __init__(self, vocab: dict[str, int], max_length: int = 256) -> None:
        self.vocab = vocab
        self.max_length = max_length
        self.unk, self.cls, self.sep = vocab["[UNK]"], vocab["[CLS]"], vocab["[SEP]"]
        self._pieces = lru_cache(maxsize=16384)(self._word_pieces)

    @classmethod
    def from_vocab_file(cls, path: Path, max_length: int = 256) -> WordPiece:
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls({token: i for i, token in enumerate(lines)}, max_length)

    def _word_pieces(self, word: str) -> tuple[int, ...]:
        if len(word) > MAX_WORD_CHARS:
            return (self.unk,)
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return (self.unk,)
            pieces.append(found)
            start = end
        return tuple(pieces)

    def encode(self, text: str) -> list[int]:
        ids = [self.cls]
        for word in basic_tokens(text):
            ids.extend(self._pieces(word))
            if len(ids) >= self.max_length - 1:
                break
        return ids[: self.max_length - 1] + [self.sep]
