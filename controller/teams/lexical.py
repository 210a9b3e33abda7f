"""Word overlap between a message and a team's anchors (TF-IDF over stems), added to the embedding score.

Why: a small sentence encoder blurs the domain words that tell two neighbouring intents apart. To
all-MiniLM-L6-v2, "remittance advice from Orca, 3 invoices cleared" sits near "pay the Orca invoice";
"DSO this quarter" near any report. The team's examples, on the other hand, use those words: a
receivables example speaks of remittances, another of DSO. Scoring how much rare vocabulary a message
shares with each intent's examples (the classic sparse half of dense + sparse retrieval) puts that
evidence back, without a model call and at a fraction of a millisecond.

Shape: stems (text.py's, the keyword router's) of the words that carry meaning; weights are TF-IDF over
the team's anchors (a stem in every intent's examples weighs ~nothing); an anchor's similarity is the
cosine of the two weight vectors, computed through an inverted index (a message touches only the anchors
that share a stem with it). semantic.py adds `LEXICAL_WEIGHT` x an intent's top-k lexical similarity to
its embedding score; the weight was set on the development sets (bench/routing.py --dev-only).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.teams.text import content_stems, stem

# Words that carry no routing signal in any team, compared as stems like the message's words.
STOP = frozenset(stem(word) for word in (
    "i me we us you he she it they them is are was were be been am do does did have has had can could "
    "would should will shall may might must to of and or but for in on at by with from about as into "
    "what how when where who whom which why there here please just get got need want know let hi hello "
    "thank thanks so if not no yes ok okay also some any all up out"
).split())


def stems_of(text: str) -> list[str]:
    return [s for s in content_stems(text) if s not in STOP and len(s) > 1]


@dataclass(frozen=True)
class LexicalIndex:
    """TF-IDF vectors of a team's anchors, as postings: stem -> (anchor rows, weights)."""

    idf: dict[str, float]
    postings: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]
    size: int

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        docs = [Counter(stems_of(t)) for t in texts]
        frequency = Counter(word for doc in docs for word in doc)
        idf = {word: math.log((len(docs) + 1) / (n + 0.5)) for word, n in frequency.items()}
        rows: dict[str, list[int]] = {}
        weights: dict[str, list[float]] = {}
        for row, doc in enumerate(docs):
            vector = _weights(doc, idf)
            for word, weight in vector.items():
                rows.setdefault(word, []).append(row)
                weights.setdefault(word, []).append(weight)
        postings = {word: (np.array(rows[word], dtype=np.int64), np.array(weights[word], dtype=np.float32))
                    for word in rows}
        return cls(idf, postings, len(docs))

    def similarities(self, text: str) -> npt.NDArray[np.float32]:
        """Cosine similarity of `text` to every anchor (0 for anchors sharing no stem with it)."""
        sims = np.zeros(self.size, dtype=np.float32)
        for word, weight in _weights(Counter(stems_of(text)), self.idf).items():
            found = self.postings.get(word)
            if found is not None:
                sims[found[0]] += weight * found[1]
        return sims


def _weights(counts: Counter[str], idf: dict[str, float]) -> dict[str, float]:
    vector = {word: (1 + math.log(n)) * idf[word] for word, n in counts.items() if idf.get(word, 0) > 0}
    norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
    return {word: w / norm for word, w in vector.items()}
