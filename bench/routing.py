"""Routing benchmark: keyword classify throughput and accuracy, against the seed's raw-substring router.

Baseline (what the seed did): an intent scores one point per keyword that occurs anywhere in the
lowercased message as a substring ("pay" inside "display"), the highest score wins, ties go to the
first declared intent (the seed's were arbitrary), no match means "clarify" or the fallback. Ours:
controller.teams.router.KeywordRouter, compiled once per team as the gateway holds it.

Both run in this process over the labelled routing set (tests/controller/teams/routing_set.yaml),
one after the other, each for at least `--seconds`. Run: `python bench/routing.py [--seconds 2]`.
The evaluation helpers here are also used by tests/controller/teams/test_routing_accuracy.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.resources import Team  # noqa: E402
from controller.teams.router import KeywordRouter  # noqa: E402
from controller.teams.toml_format import load_team_file  # noqa: E402

ROUTING_SET = ROOT / "tests" / "controller" / "teams" / "routing_set.yaml"
TEAMS_DIR = ROOT / "teams"
CLARIFY = "clarify"


@dataclass(frozen=True)
class Case:
    team: str
    message: str
    accept: tuple[str, ...]  # intents (or "clarify") that count as right
    kind: str
    trap: bool = False


def load_routing_set(path: Path = ROUTING_SET) -> list[Case]:
    data = yaml.safe_load(path.read_text())
    cases = []
    for team, items in data.items():
        for item in items:
            expect = item["expect"]
            accept = tuple(expect) if isinstance(expect, list) else (expect,)
            cases.append(Case(team, item["message"], accept, item["kind"], bool(item.get("trap"))))
    return cases


def load_teams(names: set[str], directory: Path = TEAMS_DIR) -> dict[str, Team]:
    return {name: load_team_file(directory / f"{name}.toml") for name in sorted(names)}


def naive_substring_outcome(team: Team, message: str) -> str:
    """The seed's keyword routing: raw substring counts, first declared intent on ties."""
    text = message.lower()
    best, best_score = None, 0
    for intent in team.spec.agents:
        routing = team.spec.routing.get(intent)
        score = sum(1 for kw in (routing.keywords if routing else ()) if kw.lower() in text)
        if score > best_score:
            best, best_score = intent, score
    if best is None:
        return team.spec.fallback_intent or CLARIFY
    return best


def outcome_of(classification) -> str:  # type: ignore[no-untyped-def]
    return CLARIFY if classification.needs_clarification else classification.intent


@dataclass(frozen=True)
class Accuracy:
    right: int
    total: int
    by_kind: dict[str, tuple[int, int]]
    misses: list[tuple[Case, str]]

    @property
    def ratio(self) -> float:
        return self.right / self.total if self.total else 0.0

    def line(self, label: str) -> str:
        kinds = ", ".join(f"{k} {r}/{t}" for k, (r, t) in sorted(self.by_kind.items()))
        return f"{label}: {self.right}/{self.total} = {self.ratio:.1%} ({kinds})"


def accuracy(cases: list[Case], outcome: Callable[[Case], str]) -> Accuracy:
    right = 0
    by_kind: dict[str, tuple[int, int]] = {}
    misses: list[tuple[Case, str]] = []
    for case in cases:
        got = outcome(case)
        ok = got in case.accept
        right += ok
        r, t = by_kind.get(case.kind, (0, 0))
        by_kind[case.kind] = (r + ok, t + 1)
        if not ok:
            misses.append((case, got))
    return Accuracy(right, len(cases), by_kind, misses)


def throughput(cases: list[Case], classify: Callable[[Case], object], seconds: float) -> tuple[float, int]:
    """Messages per second over repeated passes of the whole set, for at least `seconds`."""
    done, start = 0, time.perf_counter()
    while True:
        for case in cases:
            classify(case)
        done += len(cases)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum run time per router")
    args = parser.parse_args()
    cases = load_routing_set()
    teams = load_teams({c.team for c in cases})
    routers = {name: KeywordRouter(team) for name, team in teams.items()}

    ours = accuracy(cases, lambda c: outcome_of(routers[c.team].classify(c.message)))
    naive = accuracy(cases, lambda c: naive_substring_outcome(teams[c.team], c.message))
    ours_rate, ours_n = throughput(cases, lambda c: routers[c.team].classify(c.message), args.seconds)
    naive_rate, naive_n = throughput(cases, lambda c: naive_substring_outcome(teams[c.team], c.message),
                                     args.seconds)
    print(f"routing set: {len(cases)} messages over {len(teams)} teams ({', '.join(teams)})")
    print(ours.line("keyword router (word/stem, scored)"))
    print(naive.line("naive substring baseline        "))
    plain = [c for c in cases if not c.trap]
    print(accuracy(plain, lambda c: outcome_of(routers[c.team].classify(c.message)))
          .line("  keyword router, traps excluded "))
    print(accuracy(plain, lambda c: naive_substring_outcome(teams[c.team], c.message))
          .line("  naive baseline, traps excluded "))
    print(f"keyword router throughput: {ours_rate:,.0f} messages/s ({ours_n} classified)")
    print(f"naive baseline throughput: {naive_rate:,.0f} messages/s ({naive_n} classified)")
    print(f"cost of correctness: {naive_rate / ours_rate:.1f}x slower than raw substrings, "
          f"{1e6 / ours_rate:.1f} µs per message")


if __name__ == "__main__":
    main()
