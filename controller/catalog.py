"""Templates and the provider catalog (templates/agents.yaml, templates/providers.yaml).

Both files keep the seed's schema so existing catalogs load unchanged; providers gain what an
agent needs to actually call them: the API style (OpenAI-compatible or Anthropic) and a base URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from controller.resources import ManifestError, format_validation_error


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class TemplateConfig(_Loose):
    llm_provider: str | None = None
    llm_model: str | None = None
    memory_mb: int | None = Field(default=None, ge=1, le=65536)
    cpu_cores: float | None = Field(default=None, ge=0.01, le=128)
    preset: str | None = None
    system_prompt: str | None = None
    program: Literal["clawpen", "openclaw"] | None = None


class TemplateTools(_Loose):
    builtin: list[Literal["read_file", "write_file", "list_files", "run_command"]] = Field(default_factory=list)


class Template(_Loose):
    name: str
    description: str = ""
    config: TemplateConfig = Field(default_factory=TemplateConfig)
    env: dict[str, str] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)
    tools: TemplateTools = Field(default_factory=TemplateTools)  # default spec.tools.builtin
    # Started, unconfigured containers kept ready for new agents of this template (controller.warm_pool);
    # only programs that take their config after start (OpenClaw) use it. 0: none (create on demand).
    warm_pool: int = Field(default=0, ge=0, le=16, validation_alias=AliasChoices("warm_pool", "warmPool"))


class ProviderModel(_Loose):
    id: str
    name: str = ""
    context: int | None = None


class Provider(_Loose):
    name: str
    tier: str = "optional"
    description: str = ""
    api_style: Literal["openai", "anthropic"] = "openai"
    base_url: str | None = None
    env_key: str | None = None  # None: no key needed (local servers)
    key_optional: bool = False  # servers that take a key only when configured with one (vLLM, LiteLLM...)
    models: list[ProviderModel] = Field(default_factory=list)
    default_model: str | None = None


@dataclass(frozen=True)
class Catalog:
    templates: dict[str, Template]
    providers: dict[str, Provider]
    default_provider: str = "openai"
    default_memory_mb: int = 1024
    default_cpu: float = 1.0



def unknown_names(catalog: Any, template: str | None, provider: str | None) -> list[tuple[str, str]]:
    """(field, message) for a template or provider key the catalog (anything with .templates and
    .providers) does not have: the gateway (422) and `clawpen apply` (nothing written) refuse
    them the same way."""
    problems = []
    templates, providers = catalog.templates, catalog.providers
    if template and templates and template not in templates:
        problems.append(("template", f"unknown template {template!r}; known: {', '.join(sorted(templates))}"))
    if provider and providers and provider not in providers:
        problems.append(("provider", f"unknown provider {provider!r}; known: {', '.join(sorted(providers))}"))
    return problems


def _load_yaml(path: Path, top: str) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ManifestError(f"{path}: not valid YAML: {err}") from None
    section = data.get(top, {}) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ManifestError(f"{path}: expected a mapping under '{top}:'")
    return section


def load_templates(path: Path) -> dict[str, Template]:
    out: dict[str, Template] = {}
    for key, raw in _load_yaml(path, "templates").items():
        try:
            out[key] = Template.model_validate(raw)
        except ValidationError as err:
            raise ManifestError(f"{path}: templates.{key}: {format_validation_error(err)}") from None
    return out


def load_providers(path: Path) -> dict[str, Provider]:
    out: dict[str, Provider] = {}
    for key, raw in _load_yaml(path, "providers").items():
        try:
            out[key] = Provider.model_validate(raw)
        except ValidationError as err:
            raise ManifestError(f"{path}: providers.{key}: {format_validation_error(err)}") from None
    return out


def load_catalog(templates_dir: Path) -> Catalog:
    """Load agents.yaml and providers.yaml from a directory (Settings.templates_dir)."""
    return Catalog(
        templates=load_templates(templates_dir / "agents.yaml"),
        providers=load_providers(templates_dir / "providers.yaml"),
    )
