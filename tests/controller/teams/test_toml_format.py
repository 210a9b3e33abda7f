"""The seed's team TOML <-> Team resource: shipped files, defaults, round trips, and every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller.resources import ManifestError, Team, parse_resource
from controller.teams.toml_format import (
    dump_team_toml,
    load_team_file,
    load_toml_manifests,
    parse_team_toml,
    slugify,
)

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "teams").glob("*.toml"))

MINIMAL = """
[team]
name = "Tiny Team"

[agents]
only = { agent = "solo" }
"""


def test_shipped_teams_exist_and_parse() -> None:
    assert {p.stem for p in SHIPPED} >= {"finance-team", "platform-support"}
    for path in SHIPPED:
        team = load_team_file(path)
        assert team.name == path.stem
        assert team.spec.agents, f"{path.name} routes to no agents"
        for intent in team.spec.agents:
            assert team.spec.routing[intent].keywords, f"{path.name}: {intent} has no keywords"


def test_finance_team_fields_map_to_the_resource() -> None:
    team = load_team_file(ROOT / "teams" / "finance-team.toml")
    spec = team.spec
    assert spec.display_name == "Finance AI Team"
    assert spec.version == "1.1.0"
    assert spec.description.startswith("Receipts")
    assert (spec.router.name, spec.router.mode) == ("finance-router", "hybrid")
    assert spec.router.confidence_threshold == 0.7 and spec.router.clarify_on_low_confidence is True
    assert (spec.router.provider, spec.router.model) == ("openai", "gpt-4o-mini")
    assert {i: a.agent for i, a in spec.agents.items()} == {
        "receipts": "remy", "payables": "pax", "receivables": "rae", "reporter": "rex",
    }
    assert "expense report" in spec.routing["receipts"].keywords
    assert "I bought office supplies" in spec.routing["receipts"].examples
    assert spec.clarification.options_format == "• {intent}: {description}"
    assert len(spec.clarification.prompts) == 2
    assert spec.responses.routing_ack == "Let me pass this to {agent_name}..."
    assert spec.responses.agent_response_prefix == "[{agent_name}] "
    assert spec.fallback_intent is None


def test_fallback_intent_is_read_from_router() -> None:
    team = load_team_file(ROOT / "teams" / "platform-support.toml")
    assert team.spec.fallback_intent == "helpdesk"


def test_defaults_for_a_minimal_file() -> None:
    team = parse_team_toml(MINIMAL, stem="tiny")
    assert team.name == "tiny"
    assert team.spec.display_name == "Tiny Team"
    assert team.spec.router.mode == "keyword"
    assert team.spec.router.confidence_threshold == 0.7
    assert team.spec.router.clarify_on_low_confidence is True
    assert team.spec.routing == {}


def test_name_comes_from_id_then_file_stem_then_display_name() -> None:
    assert parse_team_toml(MINIMAL.replace('[team]', '[team]\nid = "chosen"'), stem="file").name == "chosen"
    assert parse_team_toml(MINIMAL, stem="My_Team File").name == "my-team-file"
    assert parse_team_toml(MINIMAL).name == "tiny-team"
    assert slugify("Finance AI Team") == "finance-ai-team"
    assert slugify("x" * 100) == "x" * 63


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_round_trip_through_toml(path: Path) -> None:
    team = load_team_file(path)
    again = parse_team_toml(dump_team_toml(team), stem="ignored-because-id-is-written")
    assert again.name == team.name
    assert again.spec == team.spec


def test_round_trip_keeps_awkward_strings() -> None:
    team = parse_team_toml(MINIMAL, stem="odd")
    team.spec.description = 'quote " backslash \\ newline\n tab\t unicode é ☃ del \x7f'
    team.spec.agents["two words"] = team.spec.agents["only"].model_copy(update={"description": "{x}"})
    text = dump_team_toml(team)
    again = parse_team_toml(text)
    assert again.spec == team.spec and again.name == "odd"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_yaml_manifest_means_the_same_team(path: Path) -> None:
    """`kubectl apply -f team.yaml` and `clawpen apply -f team.toml` must describe the same Team."""
    team = load_team_file(path)
    doc = yaml.safe_load(yaml.safe_dump(team.dump()))
    assert doc["kind"] == "Team" and doc["apiVersion"] == "clawpen.dev/v1alpha1"
    again = parse_resource(doc)
    assert isinstance(again, Team) and again.spec == team.spec and again.name == team.name


def test_manifest_loader_hook_returns_one_team(tmp_path: Path) -> None:
    path = tmp_path / "support.toml"
    path.write_text(MINIMAL)
    [team] = load_toml_manifests(path)
    assert isinstance(team, Team) and team.name == "support"


def test_example_agent_manifests_cover_every_team_agent() -> None:
    for path in SHIPPED:
        team = load_team_file(path)
        manifests = ROOT / "teams" / "examples" / f"{path.stem}.agents.yaml"
        agents = [parse_resource(d) for d in yaml.safe_load_all(manifests.read_text()) if d]
        assert {a.kind for a in agents} == {"Agent"}
        assert {a.name for a in agents} == {e.agent for e in team.spec.agents.values()}
        assert all(a.spec.provider and a.spec.model and a.spec.template for a in agents)


BAD = [
    ("[team\nname = 1", "invalid TOML"),
    ('[team]\nname="x"\n[teams]\n', "[teams]: unknown section"),
    ('[agents]\na = { agent = "b" }\n', "[team]: missing"),
    ('team = 3\n', "[team] must be a table"),
    ('[team]\nname="x"\nowner="me"\n', "[team].owner: unknown field"),
    ('[team]\nname="x"\n[router]\nmood="happy"\n', "[router].mood: unknown field"),
    ('[team]\nname="x"\n[router]\nconfidence_threshold=1.5\n', "[router].confidence_threshold: Input should be less"),
    ('[team]\nname="x"\n[router]\nmode="magic"\n',
     "[router].mode: Input should be 'keyword', 'semantic', 'llm' or 'hybrid'"),
    ('[team]\nname="x"\n[router]\nclarify_on_low_confidence="maybe"\n', "[router].clarify_on_low_confidence"),
    ('[team]\nname="x"\n[agents]\nr = { agent = "Not A Name" }\n', "[agents].r.agent: must be a DNS-1123 label"),
    ('[team]\nname="x"\n[agents]\nr = "remy"\n', "[agents].r: Input should be a valid dictionary"),
    ('[team]\nname="x"\n[agents]\nr = { agent = "remy" }\n[routing.s]\nkeywords=["a"]\n',
     "routing.s names an intent missing from agents"),
    ('[team]\nname="x"\n[agents]\nr = { agent = "remy" }\n[routing.r]\nkeywords="pay"\n',
     "[routing.r].keywords: Input should be a valid list"),
    ('[team]\nname="x"\n[router]\nfallback_intent="nobody"\n[agents]\nr = { agent = "remy" }\n',
     "fallbackIntent 'nobody' is not one of agents"),
    ('[team]\nid="Bad_Id"\n', "[team].id: must be a DNS-1123 label"),
    ('[team]\nname="!!!"\n', "[team].id: cannot derive a team name"),
    ('[team]\nname="x"\n[responses]\nrouting_ack=5\n', "[responses].routing_ack: Input should be a valid string"),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_input_names_the_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / ("!!!.toml" if "cannot derive" in expected else "bad.toml")
    path.write_text(text)
    with pytest.raises(ManifestError) as err:
        load_team_file(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert expected in message, message


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(b'[team]\nname = "caf\xe9"\n')
    with pytest.raises(ManifestError, match="not UTF-8"):
        load_team_file(path)


def test_manifest_loader_errors_leave_the_file_name_to_the_caller() -> None:
    from controller.teams.toml_format import team_documents

    with pytest.raises(ManifestError) as err:
        team_documents(Path('x.toml'), '[team]\nname="x"\n[router]\nmode="magic"\n')
    assert str(err.value).startswith("[router].mode: ")
    [doc] = team_documents(Path('tiny-team.toml'), MINIMAL)
    assert doc["kind"] == "Team" and doc["metadata"]["name"] == "tiny-team"


def test_apply_reads_toml_through_the_manifest_loader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`clawpen apply -f teams/` once `register_loader(".toml", team_documents)` is wired."""
    from controller import manifests
    from controller.teams.toml_format import team_documents

    monkeypatch.setitem(manifests.LOADERS, ".toml", team_documents)
    resources = manifests.load_manifests(ROOT / "teams")
    kinds = {(r.KIND, r.name) for r in resources}
    assert {("Team", "finance-team"), ("Team", "platform-support"), ("Agent", "remy"), ("Agent", "hal")} <= kinds
    bad = tmp_path / "bad.toml"
    bad.write_text('[team]\nname="x"\n[router]\nconfidence_threshold=2\n')
    with pytest.raises(ManifestError) as err:
        manifests.load_manifests(bad)
    assert str(err.value).startswith(f"{bad}: [router].confidence_threshold:")
