import re

import pytest

from controller.interpolate import InterpolationError, VariableNotAllowed, VarPolicy, interpolate

OPEN = VarPolicy(names=frozenset({"A", "B", "EMPTY", "MISSING"}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${A}", "alpha"),
        ("x-${A}-y", "x-alpha-y"),
        ("${MISSING:-fallback}", "fallback"),
        ("${A:-fallback}", "alpha"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${MISSING:-}", ""),
        ("$${A}", "${A}"),
        ("cost $$5", "cost $5"),
        ("${A}${B}", "alphabeta"),
    ],
)
def test_expansion(text, expected):
    assert interpolate(text, {"A": "alpha", "B": "beta", "EMPTY": ""}, policy=OPEN) == expected


def test_unset_without_default_names_variable_and_place():
    with pytest.raises(InterpolationError) as info:
        interpolate("key=${CLAWPEN_VAR_REGION}", {}, "template coding-assistant.env.KEY")
    assert "CLAWPEN_VAR_REGION" in str(info.value)
    assert "template coding-assistant.env.KEY" in str(info.value)


@pytest.mark.parametrize("text", ["${", "${1ABC}", "${A B}"])
def test_malformed_reference_is_an_error_not_a_literal(text):
    with pytest.raises(ValueError, match="malformed"):
        interpolate(text, {"A": "x"})


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("CLAWPEN_SECRET_KEY", "secret"),
        ("CLAWPEN_ADMIN_PASSWORD", "secret"),
        ("OPENAI_API_KEY", "secret"),
        ("GITHUB_TOKEN", "secret"),
        ("CLAWPEN_HOME", "CLAWPEN_* settings are never interpolated"),
        ("HOME", "only CLAWPEN_VAR_*"),
        ("CLAWPEN_VAR_DB_PASSWORD", "secret"),
    ],
)
def test_only_the_allow_list_is_read(name, why):
    environ = {name: "leaked"}
    for text in (f"${{{name}}}", f"${{{name}:-default}}"):  # a default does not make it allowed
        with pytest.raises(VariableNotAllowed, match=re.escape(why)) as info:
            interpolate(text, environ, "spec.env.A")
        assert f"spec.env.A: ${{{name}}} is not an allowed variable" in str(info.value)


def test_prefix_and_named_variables_are_read():
    environ = {"CLAWPEN_VAR_REGION": "eu", "LOG_LEVEL": "debug"}
    assert interpolate("${CLAWPEN_VAR_REGION}", environ) == "eu"
    assert interpolate("${LOG_LEVEL}", environ, policy=VarPolicy(names=frozenset({"LOG_LEVEL"}))) == "debug"
