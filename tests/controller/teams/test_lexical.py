"""Word overlap with a team's anchors (controller/teams/lexical.py): rare shared words weigh, common
ones do not, inflections meet, and an anchor sharing nothing scores zero."""

from __future__ import annotations

import numpy as np

from controller.teams.lexical import LexicalIndex, stems_of

ANCHORS = [
    "send the remittance advice to the client",  # 0
    "pay the supplier invoice",  # 1
    "the client invoice is overdue",  # 2
    "what is our runway at the current burn",  # 3
]


def test_a_rare_shared_word_outweighs_a_common_one() -> None:
    index = LexicalIndex.build(ANCHORS)
    sims = index.similarities("remittance came in for the invoice")
    assert int(np.argmax(sims)) == 0  # "remittance" is in one anchor; "invoice" in two
    assert sims[0] > sims[1] > 0
    assert sims[3] == 0.0  # nothing shared


def test_inflections_meet_and_filler_words_do_not_count() -> None:
    index = LexicalIndex.build(ANCHORS)
    assert int(np.argmax(index.similarities("paying suppliers"))) == 1
    assert not index.similarities("please can you tell me what is it").any()
    assert stems_of("Please pay the invoices") == ["pay", "invoic"]


def test_an_empty_team_and_an_empty_message_score_nothing() -> None:
    assert LexicalIndex.build([]).similarities("anything").shape == (0,)
    assert not LexicalIndex.build(ANCHORS).similarities("").any()
