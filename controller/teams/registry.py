"""The teams directory (teams/*.toml) as a live set of Team resources, reloaded when files change.

Why a stat check instead of a watcher task: the gateway asks for teams once per request or chat
message, and a directory of a few team files costs microseconds to stat. Checking the files'
(name, mtime, size) on each access means an edit is picked up by the very next request, with no
background task to start, stop or leak, and `POST /api/teams/reload` can force a re-read.

A file that does not parse is reported (path and message) and skipped; the other teams keep working.
Files whose name starts with "_" or "." are templates or editor files (the seed ships
`_example-team.toml`), not teams.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from controller.resources import ManifestError, Team
from controller.teams.router import KeywordRouter
from controller.teams.toml_format import load_team_file

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class TeamSet:
    """One consistent reading of the directory: teams by name, their compiled routers, file errors."""

    teams: dict[str, Team] = field(default_factory=dict)
    routers: dict[str, KeywordRouter] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # file path -> message


def team_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.glob("*.toml") if p.is_file() and not p.name.startswith(("_", "."))
    )


def _fingerprint(files: list[Path]) -> Fingerprint:
    prints = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        prints.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(prints)


def read_team_dir(directory: Path) -> TeamSet:
    teams: dict[str, Team] = {}
    sources: dict[str, Path] = {}
    errors: dict[str, str] = {}
    for path in team_files(directory):
        try:
            team = load_team_file(path)
        except ManifestError as err:
            errors[str(path)] = str(err)
            continue
        except OSError as err:
            errors[str(path)] = f"{path}: cannot read ({err.strerror})"
            continue
        if team.name in teams:
            errors[str(path)] = f"{path}: team {team.name!r} is already defined by {sources[team.name]}"
            continue
        teams[team.name], sources[team.name] = team, path
    routers = {name: KeywordRouter(team) for name, team in teams.items()}
    return TeamSet(teams=teams, routers=routers, sources=sources, errors=errors)


class TeamRegistry:
    """Thread-safe cache of read_team_dir, refreshed whenever a team file is added, edited or removed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._print: Fingerprint | None = None
        self._set = TeamSet()

    def current(self) -> TeamSet:
        files = team_files(self.directory)
        fingerprint = _fingerprint(files)
        with self._lock:
            if fingerprint != self._print:
                self._set, self._print = read_team_dir(self.directory), fingerprint
            return self._set

    def reload(self) -> TeamSet:
        with self._lock:
            self._print = None
        return self.current()
