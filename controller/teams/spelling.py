"""Typo repair before embedding: "pasword" is read as "password", "deploymnet" as "deployment".

Why: the encoder's tokenizer splits a word it does not know into sub-word pieces, so a misspelt
domain word ("reciept" -> "rec", "##ie", "##pt") loses its meaning and the message drifts towards
whatever its other words say. People type fast into chat boxes; one slip should not send them to the
wrong agent.

How, and why this way:
- A word is repaired only when it is not an English word, not in the encoder's vocabulary, and not
  in the team's own anchors (so a product name or a jargon word written in the team file is never
  "corrected"). English words come from pyspellchecker's frequency list (160k words, bundled in the
  wheel); the encoder's 22k-word vocabulary alone is too small: it lacks "sentry", "payback" and
  "ingesting", which it then "repaired" into "entry", "playback" and "investing".
- Candidates are the words one edit away (a letter dropped, added, changed, or two swapped —
  Damerau-Levenshtein distance 1, which covers most real slips) and, for longer words, two edits
  away from the team's own vocabulary. A candidate from the team's vocabulary wins (the team file
  says what people talk about here: "invoce" is "invoice" for a finance team, not "invoke"); else the
  most common English word, and only for words of 5+ letters, where a single edit rarely turns one
  real word into another.
- Capitalised words inside a sentence are names ("Initech", "Hooli") and are left alone; so are short
  words, words with digits, and anything the vocabulary knows.
Costs: the word list loads once per process with the model (~0.3 s, ~25 MB); the repair is a few
set lookups per unknown word (about 50 x length candidates), microseconds for a message with no typo.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from controller.teams.text import stem

LETTERS = "abcdefghijklmnopqrstuvwxyz"
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[^A-Za-z]+")
MIN_LENGTH = 5  # shorter words: too many real words one edit away ("vpn" -> "van", "argo" -> "ago")
MIN_LENGTH_GENERAL = 5  # a repair towards a general (not team) word needs at least this many letters
MIN_LENGTH_TWO_EDITS = 7  # two edits only for long words, and only towards the team's vocabulary
FIRST_WORD_ID = 1996  # BERT-style vocabularies: ids below are reserved, unused and single characters
MIN_COUNT = 20  # pyspellchecker's list: words seen fewer times are mostly misspellings themselves


def edits1(word: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion away from `word`."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = [a + b[1:] for a, b in splits if b]
    transposes = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    replaces = [a + c + b[1:] for a, b in splits if b for c in LETTERS]
    inserts = [a + c + b for a, b in splits for c in LETTERS]
    return set(deletes + transposes + replaces + inserts)


def _deletes(word: str, depth: int) -> set[str]:
    out, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


@dataclass(frozen=True)
class General:
    """The English words a message may use, their rank (lower = more common) and their stems."""

    rank: Mapping[str, int]
    stems: frozenset[str]

    @classmethod
    def from_vocab(cls, vocab: Mapping[str, int], counts: Mapping[str, int] | None = None) -> General:
        """An encoder vocabulary's whole words, plus word `counts` (english_counts()) when given."""
        rank = {w: i for w, i in vocab.items() if i >= FIRST_WORD_ID and w.isalpha() and w.isascii()}
        if not counts:  # the encoder's vocabulary lacks most inflections: accept those of its words
            return cls(rank, frozenset(stem(w) for w in rank))
        most = max(counts.values())
        for word, count in counts.items():
            rank[word] = min(rank.get(word, most), most - count)
        return cls(rank, frozenset())  # the word list has the inflections themselves (~8 MB saved)


def english_counts(minimum: int = MIN_COUNT) -> dict[str, int]:
    """English word frequencies from pyspellchecker's bundled list (words seen at least `minimum`
    times; rarer entries are mostly misspellings themselves). Empty when the package is missing: the
    encoder's vocabulary alone then decides what is a word, with more false repairs."""
    try:
        from spellchecker import SpellChecker
    except ImportError:
        return {}
    frequencies = SpellChecker(language="en", distance=1).word_frequency.dictionary
    return {w: int(c) for w, c in frequencies.items() if c >= minimum and w.isalpha() and w.isascii()}


@dataclass
class Speller:
    """Repairs unknown words against a general vocabulary and, preferably, a team's own words."""

    vocabulary: General
    team: frozenset[str] = frozenset()
    _team_deletes: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _team_stems: frozenset[str] = field(default_factory=frozenset, repr=False)

    @classmethod
    def for_team(cls, vocabulary: General, texts: Iterable[str]) -> Speller:
        words = frozenset(w.lower() for text in texts for w in re.findall(r"[A-Za-z]+", text) if len(w) > 2)
        speller = cls(vocabulary, words, {}, frozenset(stem(w) for w in words))
        for word in words:
            if len(word) >= MIN_LENGTH_TWO_EDITS - 2:
                for key in _deletes(word, 2):
                    speller._team_deletes.setdefault(key, set()).add(word)
        return speller

    @property
    def general(self) -> Mapping[str, int]:
        return self.vocabulary.rank

    def _stem_known(self, word: str) -> bool:
        root = stem(word)
        return root in self.vocabulary.stems or root in self._team_stems

    def known(self, word: str) -> bool:
        """In either vocabulary, or an inflection of a word that is: the encoder's vocabulary has
        "attach" but not "attaching", "adapt" but not "adapter"; those are words, not typos."""
        if word in self.general or word in self.team or self._stem_known(word):
            return True
        for suffix in ("ers", "er", "ors", "or", "ly", "ment", "ments", "able", "ness"):
            base = word[: -len(suffix)]
            if word.endswith(suffix) and len(base) >= 3 and (
                    base in self.general or self._stem_known(base) or base[:-1] in self.general):
                return True
        return False

    def repair_word(self, word: str, team_only: bool = False) -> str | None:
        """The intended word for an unknown lowercase `word`, or None to leave it as it is.

        `team_only`: repair only towards the team's own words (for a capitalised first word, which may
        be a name: "Globex" must not become "globe")."""
        if len(word) < MIN_LENGTH or self.known(word):
            return None
        near = edits1(word)
        in_team = near & self.team
        if in_team:  # a real word over a slip that the team file itself contains ("invoce")
            return min(in_team, key=lambda w: (w not in self.general, self.general.get(w, 0), w))
        if len(word) >= MIN_LENGTH_TWO_EDITS:
            far = {w for key in _deletes(word, 2) for w in self._team_deletes.get(key, ())}
            far = {w for w in far if _distance(word, w) <= 2}
            if far:
                return min(far, key=lambda w: (_distance(word, w), w not in self.general,
                                               self.general.get(w, 0), w))
        if len(word) >= MIN_LENGTH_GENERAL and not team_only:
            in_general = [w for w in near if w in self.general]
            if in_general:
                return min(in_general, key=lambda w: (self.general[w], w))
        return None

    def repair(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """`text` with unknown words repaired, and the (typed, read as) pairs that were changed."""
        out: list[str] = []
        changed: list[tuple[str, str]] = []
        sentence_start = True
        for token in WORD.findall(text):
            if not token[0].isalpha():
                out.append(token)
                if any(ch in ".!?\n" for ch in token):
                    sentence_start = True
                continue
            capital = token[0].isupper()
            odd_case = any(ch.isupper() for ch in token[1:]) and not token.isupper()  # gRPC, iPhone
            name = capital and not sentence_start
            sentence_start = False
            skip = name or odd_case or "'" in token
            fixed = None if skip else self.repair_word(token.lower(), team_only=capital)
            if fixed is None:
                out.append(token)
            else:
                changed.append((token, fixed))
                out.append(fixed)
        return "".join(out), changed


def _distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance (Damerau-Levenshtein with adjacent swaps), for short words."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]
