"""Word splitting and a small stemmer for keyword routing.

Why not raw substrings (what the seed did): "pay" is inside "display", "bill" inside "billion", "due"
inside "procedure", so substring routing sends messages to the wrong agent. Why not a full stemmer
(Porter/Snowball): routing keywords are a handful of domain words, and a dependency-free rule set that
folds plurals and -ing/-ed forms ("receipts"->"receipt", "paying"->"pay", "invoiced"->"invoice") is
predictable enough for a user to reason about when writing keywords. Both the keyword and the message
go through the same `stem`, so whatever the rules do, they do it to both sides.
"""

from __future__ import annotations

import re
from functools import lru_cache

WORD = re.compile(r"[a-z0-9]+")
VOWEL = re.compile(r"[aeiouy]")

# Common irregular forms in help-desk and finance talk; the regular rules cannot reach them.
IRREGULAR = {
    "paid": "pay",
    "bought": "buy",
    "spent": "spend",
    "sent": "send",
    "owed": "owe",
    "made": "make",
    "broke": "break",
    "broken": "break",
    "ran": "run",
    "went": "go",
    "gone": "go",
    "children": "child",
    "people": "person",
}
UNDOUBLE_EXCEPT = frozenset("lsz")


def _undouble(stem: str) -> str:
    # shipping -> shipp -> ship; but billing -> bill stays bill.
    last = stem[-1:]
    if len(stem) >= 3 and last == stem[-2] and last not in UNDOUBLE_EXCEPT and last not in "aeiou":
        return stem[:-1]
    return stem


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Fold a lowercase word to a stem shared by its plural, -ing and -ed forms."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if len(word) <= 3 or word.isdigit():
        return word
    base = word
    if base.endswith("ies") and len(base) > 4:
        base = base[:-3] + "y"
    elif base.endswith("ied") and len(base) > 4:
        base = base[:-3] + "y"
    elif base.endswith("ing") and len(base) >= 6 and VOWEL.search(base[:-3]):
        base = _undouble(base[:-3])
    elif base.endswith("ed") and len(base) >= 5 and not base.endswith("eed") and VOWEL.search(base[:-2]):
        base = _undouble(base[:-2])
    elif base.endswith("s") and not base.endswith(("ss", "us", "is")):
        base = base[:-1]
    # A trailing silent e differs between forms (invoice / invoiced / invoicing): drop it everywhere.
    if len(base) > 3 and base.endswith("e") and not base.endswith("ee"):
        base = base[:-1]
    return base


def words(text: str) -> list[str]:
    """Lowercase words of a message; apostrophes join ("what's" -> "whats"), other punctuation splits."""
    return WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))


def stems(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in words(text))


# Articles and possessives carry no routing signal and sit inside phrases: dropping them on both sides
# lets the keyword "bill client" match "bill the client" and "pay vendor" match "pay our vendor".
FILLER = frozenset(
    {"a", "an", "the", "my", "our", "your", "their", "his", "her", "its", "this", "that", "these"}
)


def content_stems(text: str) -> tuple[str, ...]:
    """Stems of the words that can carry meaning, in order (fillers dropped)."""
    return tuple(stem(w) for w in words(text) if w not in FILLER)
