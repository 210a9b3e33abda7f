"""Semantic routing: nearest intent by sentence-embedding similarity, with no model call and no network.

Anchors: each intent is represented by what the team file already says about it — its description
(whole, and split at ":" and "," into its listed topics), its examples, its keywords as short phrases,
and any examples learned from users' clarification answers (learned.py). They are embedded once per
team version (`team_fingerprint`: a hash of everything that feeds the anchors) and cached in-process;
an edited team file gets new anchors on the next message, an unchanged one never re-embeds.

Score of an intent (k-nearest-neighbour): the mean cosine similarity of its `TOP_K` nearest anchors,
measured after centring — the team's mean anchor vector is subtracted from the anchors and the
message before comparing. A sentence encoder places every finance (or every platform) sentence in the
same neighbourhood, so raw similarities to all intents are high and close together; centring removes
that shared "this is about money" direction and leaves what tells the intents apart. The mean of the
top 3 rather than the single best keeps one lucky keyword phrase from outweighing an intent whose
examples agree. (Measured on the two development sets, bench/routing.py: centred top-3 mean beat the
raw best/top-3 blend used before by a few messages out of 280; the anchors themselves — many varied
examples per intent in the team files — mattered far more than the scoring.) Measured on the
development sets, the mean of the top 3 equals a softmax-regression classifier trained on the anchors
within a message, and beats the nearest-centroid rule by ~10 messages, so the simple rule stays.
Confidence, and why: similarities of an embedding model are not probabilities, and their scale depends
on the model, so confidence is read from two things that are stable across messages:
- the absolute floor (`router.similarity_floor`), on raw (uncentred) similarity: the mean of the
  message's `TOP_K` nearest anchors in the whole team. Below it, nothing in the team resembles the
  message (off-topic), whatever the margin — the fallback intent or a clarifying question, as with
  keywords;
- the margin between the best two intents' centred scores: confidence = 1 - 0.5 * exp(-margin /
  MARGIN_SCALE), so a tie is 0.5 (never routes at the default threshold 0.7) and confidence rises
  towards 1 as the winner pulls away. The constants were set on the development sets only
  (routing_set.yaml and routing_dev2.yaml); bench/routing.py reports the held-out set.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.resources import Team
from controller.teams.anchor_vectors import VectorFile, text_key
from controller.teams.lexical import LexicalIndex
from controller.teams.router import Classification, agent_for, no_match
from controller.teams.small_talk import SMALL_TALK
from controller.teams.spelling import General, Speller, english_counts

Vector = npt.NDArray[np.float32]
Embed = Callable[[str], Vector]

TOP_K = 3  # an intent's score: the mean of its TOP_K nearest (centred) anchors
LEXICAL_WEIGHT = 0.15  # plus this times the mean of its TOP_K best word-overlap anchors (lexical.py)
MARGIN_SCALE = 0.015
DEFAULT_FLOOR = 0.35
CACHE_TEAMS = 64
CACHE_TEXTS = 20_000  # embedded anchor texts kept across team versions (~30 MB at 384 floats)
SPLIT = re.compile(r"[:,;]")


def margin_confidence(margin: float) -> float:
    return 1.0 - 0.5 * math.exp(-max(margin, 0.0) / MARGIN_SCALE)


def intent_anchors(team: Team, learned: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """The texts that stand for each intent, in declared order, without duplicates."""
    anchors: dict[str, list[str]] = {}
    for intent, entry in team.spec.agents.items():
        texts: list[str] = []
        if entry.description:
            texts.append(entry.description)
            texts += [part.strip() for part in SPLIT.split(entry.description) if len(part.strip()) > 2]
        routing = team.spec.routing.get(intent)
        if routing:
            texts += routing.examples
            texts += routing.keywords
        texts += (learned or {}).get(intent, [])
        anchors[intent] = list(dict.fromkeys(t for t in texts if t.strip()))
    return anchors


def team_fingerprint(team: Team, learned: dict[str, list[str]] | None = None) -> str:
    """A hash of what the anchors are made of: equal fingerprints mean equal anchor embeddings."""
    doc = json.dumps([team.name, intent_anchors(team, learned)], sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AnchorSet:
    fingerprint: str
    intents: tuple[str, ...]
    texts: tuple[str, ...]
    owner: npt.NDArray[np.int64]  # intent index of each anchor row
    vectors: Vector  # (anchors, dim), unit rows
    centre: Vector  # the mean anchor vector of the team
    centred: Vector  # (anchors, dim): vectors - centre, rescaled to unit rows
    lexical: LexicalIndex  # the anchors' words, for the word-overlap part of the score
    small_talk: Vector  # (SMALL_TALK, dim): small_talk.py's sentences, centred like the anchors


def _centred(vectors: Vector, centre: Vector) -> Vector:
    centred = vectors - centre
    centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
    return centred.astype(np.float32)


def centred_set(fingerprint: str, intents: tuple[str, ...], texts: tuple[str, ...],
                owner: npt.NDArray[np.int64], vectors: Vector, small_talk: Vector) -> AnchorSet:
    centre = vectors.mean(0) if len(vectors) else np.zeros(vectors.shape[1:], dtype=np.float32)
    return AnchorSet(fingerprint, intents, texts, owner, vectors, centre.astype(np.float32),
                     _centred(vectors, centre), LexicalIndex.build(texts), _centred(small_talk, centre))


class AnchorCache:
    """Embedded anchors per team fingerprint, least recently used dropped past `size` entries.

    Vectors are also kept per anchor text (up to CACHE_TEXTS), so a new team version — an edited
    example, a learned clarification answer — embeds only the texts that are new, not the whole team
    again. They are reused only with the same encoder that made them, and, after `persist_to`, kept
    on disk per encoder identity so the next process does not embed them again.
    """

    def __init__(self, size: int = CACHE_TEAMS) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._sets: OrderedDict[str, AnchorSet] = OrderedDict()
        self._spellers: OrderedDict[str, Speller] = OrderedDict()
        self._texts: OrderedDict[str, Vector] = OrderedDict()  # text_key(text) -> vector
        self._texts_owner: object = None
        self._directory: Path | None = None
        self._file: VectorFile | None = None
        self.builds = 0  # how many times anchors were embedded (tests check invalidation with it)
        self.embedded = 0  # how many anchor texts were embedded in all

    def get(self, team: Team, embed_many: Callable[[list[str]], Vector],
            learned: dict[str, list[str]] | None = None) -> AnchorSet:
        key = team_fingerprint(team, learned)
        with self._lock:
            found = self._sets.get(key)
            if found is not None:
                self._sets.move_to_end(key)
                return found
        anchors = intent_anchors(team, learned)
        intents = tuple(anchors)
        texts = tuple(t for intent in intents for t in anchors[intent])
        owner = np.array([i for i, intent in enumerate(intents) for _ in anchors[intent]], dtype=np.int64)
        vectors = self._embed(list(texts) + list(SMALL_TALK), embed_many)
        built = centred_set(key, intents, texts, owner, vectors[: len(texts)], vectors[len(texts):])
        with self._lock:
            self.builds += 1
            self._sets[key] = built
            while len(self._sets) > self.size:
                self._sets.popitem(last=False)
        return built

    def persist_to(self, directory: Path) -> None:
        """Keep anchor vectors in `directory` too (anchor_vectors.py), read back on the next start."""
        with self._lock:
            if self._directory != directory:
                self._directory = directory
                self._texts_owner = None  # re-read from the new place on the next build

    def _embed(self, texts: list[str], embed_many: Callable[[list[str]], Vector]) -> Vector:
        encoder = getattr(embed_many, "__self__", embed_many)
        keys = [text_key(t) for t in texts]
        with self._lock:
            if self._texts_owner is not encoder:
                self._texts.clear()
                self._texts_owner = encoder
                identity = getattr(encoder, "identity", None)
                self._file = VectorFile(self._directory, identity) if self._directory and identity else None
                if self._file is not None:
                    self._texts.update(self._file.load())
            missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in self._texts))
        fresh = embed_many(missing) if missing else None
        with self._lock:
            if fresh is not None:
                self.embedded += len(missing)
                for text, vector in zip(missing, fresh, strict=True):
                    self._texts[text_key(text)] = vector
            rows = [self._texts[k] for k in keys]
            for key in keys:
                self._texts.move_to_end(key)
            while len(self._texts) > max(CACHE_TEXTS, len(texts)):
                self._texts.popitem(last=False)
            file = self._file if fresh is not None and self._texts_owner is encoder else None
            snapshot = dict(self._texts) if file is not None else {}
        if file is not None:  # disk I/O outside the lock: other teams' lookups need not wait for it
            file.save(snapshot)
        return np.stack(rows).astype(np.float32) if rows else embed_many([])

    def speller(self, anchors: AnchorSet, vocabulary: General) -> Speller:
        """The typo repairer for a team version: the encoder's words plus the team's own anchor words."""
        with self._lock:
            found = self._spellers.get(anchors.fingerprint)
            if found is not None and found.vocabulary is vocabulary:
                self._spellers.move_to_end(anchors.fingerprint)
                return found
        built = Speller.for_team(vocabulary, anchors.texts)
        with self._lock:
            self._spellers[anchors.fingerprint] = built
            while len(self._spellers) > self.size:
                self._spellers.popitem(last=False)
        return built


def nearness(anchors: AnchorSet, message: Vector) -> float:
    """How close the message is to anything in the team: mean raw cosine of its TOP_K nearest anchors."""
    sims = anchors.vectors @ message
    return float(np.sort(sims)[::-1][:TOP_K].mean()) if sims.size else 0.0


def centre_message(anchors: AnchorSet, message: Vector) -> Vector:
    """The message vector minus the team's mean anchor, rescaled to unit length (as the anchors are)."""
    centred = message - anchors.centre
    return centred / max(float(np.linalg.norm(centred)), 1e-12)  # type: ignore[no-any-return]


def intent_scores(anchors: AnchorSet, centred: Vector, text: str = "") -> list[tuple[str, float, str]]:
    """(intent, score, nearest anchor text) for every intent with anchors, best first.

    `centred`: the message from centre_message(). Score: the mean centred cosine similarity of the
    intent's TOP_K nearest anchors (see the module doc), plus LEXICAL_WEIGHT x the mean of its TOP_K
    best word-overlap similarities to `text`.
    """
    sims = anchors.centred @ centred
    words = anchors.lexical.similarities(text) if text else None
    out = []
    for i, intent in enumerate(anchors.intents):
        rows = np.flatnonzero(anchors.owner == i)
        if rows.size == 0:
            continue
        own = sims[rows]
        score = float(np.sort(own)[::-1][:TOP_K].mean())
        if words is not None:
            score += LEXICAL_WEIGHT * float(np.sort(words[rows])[::-1][:TOP_K].mean())
        out.append((intent, score, anchors.texts[int(rows[int(np.argmax(own))])]))
    order = {intent: i for i, intent in enumerate(anchors.intents)}
    return sorted(out, key=lambda s: (-s[1], order[s[0]]))


def small_talk_score(anchors: AnchorSet, centred: Vector) -> tuple[float, str]:
    """The (centred) message's score against small_talk.py's sentences, as an intent's, and the nearest."""
    sims = anchors.small_talk @ centred
    return float(np.sort(sims)[::-1][:TOP_K].mean()), SMALL_TALK[int(np.argmax(sims))]


def classify_semantic(team: Team, message: str, anchors: AnchorSet, embed: Embed,
                      speller: Speller | None = None) -> Classification:
    """The nearest intent with a margin-calibrated confidence; below the floor, fallback or clarify.

    With a `speller`, unknown words are repaired first (spelling.py) and the reasoning says how the
    message was read ("pasword" as "password")."""
    router = team.spec.router
    read_as = ""
    if speller is not None:
        repaired, changed = speller.repair(message)
        if changed:
            message = repaired
            read_as = "; read " + ", ".join(f"{typed!r} as {fixed!r}" for typed, fixed in changed)
    vector = embed(message)
    centred = centre_message(anchors, vector)
    ranked = intent_scores(anchors, centred, message)
    scores = tuple((intent, round(score, 4)) for intent, score, _ in ranked)
    if not ranked:
        return no_match(team, "the team has no intents to compare with")
    best, top, nearest = ranked[0]
    runner = ranked[1][1] if len(ranked) > 1 else 0.0
    floor = router.similarity_floor
    near = nearness(anchors, vector)
    if near < floor:
        result = no_match(team, f"semantic: nothing in the team resembles the message (nearest anchors "
                                f"{near:.2f} < floor {floor:.2f}){read_as}")
        return replace(result, scores=scores)
    chat, chat_nearest = small_talk_score(anchors, centred)
    if chat > top:
        result = no_match(team, f"semantic: closer to small talk ({chat:.2f}, via {chat_nearest!r}) than to "
                                f"any intent (best {best} {top:.2f}){read_as}")
        return replace(result, scores=scores)
    confidence = margin_confidence(top - runner)
    reasoning = f"semantic: nearest to {best} ({top:.2f}, via {nearest!r}; similarity {near:.2f})"
    reasoning += f", margin {top - runner:.2f} over {ranked[1][0]}" if len(ranked) > 1 else ""
    reasoning += read_as
    low = confidence < router.confidence_threshold
    return Classification(
        intent=best,
        confidence=confidence,
        matched_keywords=(),
        needs_clarification=low and router.clarify_on_low_confidence,
        agent=agent_for(team, best),
        reasoning=reasoning,
        method="semantic",
        scores=scores,
    )


def top_intents(scores: Sequence[tuple[str, float]], n: int = 3) -> list[dict[str, object]]:
    return [{"intent": intent, "score": round(score, 4)} for intent, score in list(scores)[:n]]


Learned = Callable[[Team], dict[str, list[str]]]
SHARED_ANCHORS = AnchorCache()


class SemanticRouter:
    """Semantic classification with the process's shared encoder and anchor cache.

    `encoder` is a zero-argument factory so the model loads on the first semantic message, not at
    import or start-up (keyword-only deployments never pay for it). `learned` adds a team's learned
    examples to its anchors (and so to its fingerprint: learning invalidates the cache entry).
    """

    def __init__(self, encoder: Callable[[], Any] | None = None, cache: AnchorCache | None = None,
                 learned: Learned | None = None, repair_typos: bool = True,
                 vectors_dir: Path | None = None) -> None:
        self._encoder = encoder or _shared_encoder
        self.cache = cache or SHARED_ANCHORS
        if vectors_dir is not None:
            self.cache.persist_to(vectors_dir)
        self.learned = learned
        self.repair_typos = repair_typos  # off only to measure what the repair is worth (bench/routing.py)

    def classify(self, team: Team, message: str) -> Classification:
        """Raises ModelUnavailable when the model package is missing (callers fall back to keywords)."""
        encoder = self._encoder()
        anchors = self.cache.get(team, encoder.encode_many, self.learned(team) if self.learned else None)
        speller = None
        vocabulary = _vocabulary(encoder) if self.repair_typos else None
        if vocabulary is not None:
            speller = self.cache.speller(anchors, vocabulary)
        return classify_semantic(team, message, anchors, encoder.encode, speller)

    async def aclassify(self, team: Team, message: str) -> Classification:
        # A forward pass is milliseconds of NumPy (and the first call loads the model): off the event loop.
        return await asyncio.to_thread(self.classify, team, message)


_VOCABULARY: tuple[Any, General] | None = None  # (encoder, its vocabulary): the process shares one encoder
_VOCABULARY_LOCK = threading.Lock()


def _vocabulary(encoder: Any) -> General | None:
    """The encoder's whole-word vocabulary for typo repair (None for an encoder without a tokenizer)."""
    global _VOCABULARY
    vocab = getattr(getattr(encoder, "tokenizer", None), "vocab", None)
    if not isinstance(vocab, dict):
        return None
    with _VOCABULARY_LOCK:
        if _VOCABULARY is None or _VOCABULARY[0] is not encoder:
            _VOCABULARY = (encoder, General.from_vocab(vocab, english_counts()))
        return _VOCABULARY[1]


def _shared_encoder() -> Any:
    from controller.teams.minilm import shared_encoder

    return shared_encoder()
