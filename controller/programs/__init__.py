"""Agent programs: what runs inside an agent's container (see controller.programs.base)."""

from __future__ import annotations

from controller.programs.base import (
    AgentProgram,
    ChatRequest,
    Rendered,
    RenderError,
    RenderInput,
    WarmPoolProgram,
    warm_pool_program,
)
from controller.programs.clawpen import ClawpenProgram
from controller.programs.openclaw import OpenClawProgram

PROGRAMS: dict[str, AgentProgram] = {"clawpen": ClawpenProgram(), "openclaw": OpenClawProgram()}
DEFAULT_PROGRAM = "clawpen"


def program_named(name: str | None) -> AgentProgram:
    return PROGRAMS[name or DEFAULT_PROGRAM]


__all__ = [
    "DEFAULT_PROGRAM",
    "PROGRAMS",
    "AgentProgram",
    "ChatRequest",
    "RenderError",
    "RenderInput",
    "Rendered",
    "WarmPoolProgram",
    "program_named",
    "warm_pool_program",
]
