"""Resource models: what validates, and that every error names the field and the rule."""

import pytest

from controller.resources import API_VERSION, PRESETS, Agent, ManifestError, Resources, parse_resource


def agent_doc(**spec):
    return {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": "finn"}, "spec": spec}


def error_of(doc) -> str:
    with pytest.raises(ManifestError) as info:
        parse_resource(doc)
    return str(info.value)


def test_full_manifest_round_trips():
    doc = agent_doc(
        template="coding-assistant", provider="openai", model="gpt-4o", baseURL="http://host.docker.internal:1234/v1",
        resources={"memoryMB": 2048, "cpu": 1.5}, env={"LOG_LEVEL": "info"}, secrets=["OPENAI_API_KEY"],
        volumes=[{"source": "notes", "target": "/mnt/notes"}], restartPolicy="always", state="Stopped",
        image="clawpen/agent:test", project="books", tags=["finance"],
    )
    agent = parse_resource(doc)
    assert isinstance(agent, Agent)
    assert agent.spec.resources.memory_mb == 2048
    again = parse_resource(agent.dump())
    assert again == agent


@pytest.mark.parametrize(
    ("spec", "field", "rule"),
    [
        ({"resources": {"memoryMB": 0}}, "spec.resources.memoryMB", "greater than or equal to 1"),
        ({"resources": {"memoryMB": 65537}}, "spec.resources.memoryMB", "less than or equal to 65536"),
        ({"resources": {"cpu": 0}}, "spec.resources.cpu", "greater than or equal to 0.01"),
        ({"resources": {"cpu": 129}}, "spec.resources.cpu", "less than or equal to 128"),
        ({"resources": {"preset": "huge"}}, "spec.resources.preset", "nano"),
        ({"env": {"1BAD": "x"}}, "spec.env", "must match"),
        ({"env": {"A": "x" * 4097}}, "spec.env", "longer than 4096"),
        ({"env": {"A": "a\0b"}}, "spec.env", "NUL"),
        ({"env": {f"K{i}": "v" for i in range(129)}}, "spec.env", "at most 128"),
        ({"secrets": ["../etc"]}, "spec.secrets.0", "never contain '..'"),
        ({"volumes": [{"source": "v", "target": "relative"}]}, "spec.volumes.0.target", "absolute"),
        ({"volumes": [{"source": "v", "target": "/a/../proc"}]}, "spec.volumes.0.target", "'..'"),
        ({"volumes": [{"source": "v", "target": "/proc/self"}]}, "spec.volumes.0.target", "/proc"),
        ({"volumes": [{"source": "v", "target": "/sys"}]}, "spec.volumes.0.target", "/sys"),
        ({"volumes": [{"source": "v", "target": "/etc/shadow"}]}, "spec.volumes.0.target", "/etc/shadow"),
        ({"volumes": [{"source": "/var/run/docker.sock", "target": "/x"}]}, "spec.volumes.0.source", "docker.sock"),
        ({"volumes": [{"source": "v", "target": "/data"}]}, "spec.volumes.0.target", "/data"),
        ({"state": "Paused"}, "spec.state", "Running"),
        ({"restartPolicy": "sometimes"}, "spec.restartPolicy", "always"),
        ({"baseURL": "ftp://x"}, "spec.baseURL", "http"),
        ({"unknownField": 1}, "spec.unknownField", "Extra inputs"),
    ],
)
def test_invalid_specs_name_field_and_rule(spec, field, rule):
    message = error_of(agent_doc(**spec))
    assert field in message
    assert rule in message


@pytest.mark.parametrize("name", ["Finn", "-finn", "finn-", "fi_nn", "a" * 64, ""])
def test_names_must_be_dns_1123_labels(name):
    doc = agent_doc()
    doc["metadata"]["name"] = name
    assert "metadata.name" in error_of(doc)


def test_wrong_kind_and_api_version_are_named():
    assert "kind" in error_of({"apiVersion": API_VERSION, "kind": "Pod", "metadata": {"name": "x"}})
    assert "apiVersion" in error_of({"apiVersion": "v1", "kind": "Agent", "metadata": {"name": "x"}})


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_match_the_seed_and_explicit_fields_win(preset):
    assert Resources(preset=preset).effective(1, 1) == PRESETS[preset]
    assert Resources(preset=preset, memoryMB=300).effective(1, 1) == (300, PRESETS[preset][1])


def test_secret_refs_accept_names_or_objects():
    agent = parse_resource(agent_doc(secrets=["A", {"name": "B", "asEnv": True}]))
    assert [(s.name, s.as_env) for s in agent.spec.secrets] == [("A", False), ("B", True)]
    assert "unique" in error_of(agent_doc(secrets=["A", "A"]))
