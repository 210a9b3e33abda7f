import pytest

from controller.interpolate import InterpolationError, interpolate


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
    assert interpolate(text, {"A": "alpha", "B": "beta", "EMPTY": ""}) == expected


def test_unset_without_default_names_variable_and_place():
    with pytest.raises(InterpolationError) as info:
        interpolate("key=${OPENAI_API_KEY}", {}, "template coding-assistant.env.KEY")
    assert "OPENAI_API_KEY" in str(info.value)
    assert "template coding-assistant.env.KEY" in str(info.value)


@pytest.mark.parametrize("text", ["${", "${1ABC}", "${A B}"])
def test_malformed_reference_is_an_error_not_a_literal(text):
    with pytest.raises(ValueError, match="malformed"):
        interpolate(text, {"A": "x"})
