"""The kubectl-style CLI through the real `clawpen` process: a real CLAWPEN_HOME, no Docker needed.

Every test runs `python -m controller.cli ...` as a user would and reads what it prints: output
formats, selectors, stdin manifests, dry runs and diffs, edits through $EDITOR, deletes by file,
explain, completion, status with nothing running, secrets messages, and hand-written spec files
keeping their comments through stop/start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.warm_pool.status import PoolStatus, save_report, status_path
from tests.support.templates import POOLED, templates_with

ROOT = Path(__file__).resolve().parents[2]

AGENTS = """
apiVersion: clawpen.dev/v1alpha1
kind: Agent
metadata: {name: finn, labels: {team: finance, role: receipts}}
spec: {provider: ollama}
---
apiVersion: clawpen.dev/v1alpha1
kind: Agent
metadata: {name: pax, labels: {team: finance}}
spec: {provider: ollama, model: qwen2.5-coder, state: Stopped}
---
apiVersion: clawpen.dev/v1alpha1
kind: Agent
metadata: {name: ops}
spec: {template: coding-assistant, provider: ollama}
"""

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture()
def cli(home: Path) -> Cli:
    def run(
        *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "CLAWPEN_HOME": str(home), **(env or {})}
        full_env.pop("CLAWPEN_TOKEN", None)
        return subprocess.run(
            [sys.executable, "-m", "controller.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture()
def applied(cli: Cli) -> Cli:
    done = cli("apply", "-f", "-", stdin=AGENTS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["agent/finn created", "agent/pax created", "agent/ops created"]
    return cli


def test_output_formats_and_selectors(applied: Cli) -> None:
    names = applied("get", "agents", "-o", "name")
    assert names.stdout.split() == ["agent/finn", "agent/ops", "agent/pax"]
    assert "no controller is running" in names.stderr  # status may be stale: said on stderr
    selected = applied("get", "agents", "-l", "team=finance,role!=receipts", "-o", "name")
    assert selected.stdout.split() == ["agent/pax"]
    assert applied("get", "agents", "-l", "!team", "-o", "name").stdout.split() == ["agent/ops"]
    assert applied("get", "agents", "-l", "role", "-o", "name").stdout.split() == ["agent/finn"]
    path = applied("get", "agents", "-o", "jsonpath={range .items[*]}{.metadata.name}={.spec.provider}{'\\n'}{end}")
    assert path.returncode == 0
    one = applied("get", "agent/pax", "-o", "jsonpath={.spec.model}")
    assert one.stdout.strip() == "qwen2.5-coder"
    every = applied("get", "agents", "-o", "jsonpath={.items[*].metadata.name}")
    assert every.stdout.split() == ["finn", "ops", "pax"]
    table = applied("get", "agents", "--no-headers").stdout.splitlines()
    assert [line.split()[0] for line in table] == ["finn", "ops", "pax"]
    for line in table:  # one word per column: awk '$3 == "True"' works
        name, phase, ready, reason, provider, model, endpoint, _age = line.split()
        assert ready in ("True", "False", "Unknown") and phase == "Pending"
    rows = {line.split()[0]: line.split() for line in table}
    assert rows["ops"][4:6] == ["ollama", "llama3.2"]  # provider override without a model: its default
    wide = applied("get", "agents", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["TEMPLATE", "STATE", "LABELS"]
    assert "role=receipts,team=finance" in next(line for line in wide if line.startswith("finn"))
    docs = json.loads(applied("get", "agents", "-o", "json").stdout)
    assert [d["metadata"]["name"] for d in docs] == ["finn", "ops", "pax"]
    assert applied("get", "agents", "-o", "bogus").returncode == 1


def test_get_all_and_team_counts(applied: Cli) -> None:
    team = textwrap.dedent(
        """
        apiVersion: clawpen.dev/v1alpha1
        kind: Team
        metadata: {name: money}
        spec:
          agents:
            receipts: {agent: finn, description: receipts}
            payables: {agent: nobody, description: bills}
        """
    )
    assert applied("apply", "-f", "-", stdin=team).returncode == 0
    everything = applied("get", "all").stdout
    header, row = everything.split("\n\n")[1].splitlines()
    assert header.split()[:3] == ["NAME", "PHASE", "AGENTS"]
    assert row.split()[2] == "0/2"  # members running / named: a missing member is not counted as present


def test_apply_validates_like_the_api_and_writes_nothing(cli: Cli, home: Path) -> None:
    bad = AGENTS.replace("spec: {template: coding-assistant, provider: ollama}", "spec: {template: nosuch}")
    answer = cli("apply", "-f", "-", stdin=bad)
    assert answer.returncode == 1
    assert "unknown template 'nosuch'; known: " in answer.stderr and "coding-assistant" in answer.stderr
    assert "nothing was applied" in answer.stderr
    assert not list((home / "agents").glob("*.yaml")) if (home / "agents").exists() else True
    wrong_provider = cli("apply", "-f", "-", stdin=AGENTS.replace("spec: {provider: ollama}", "spec: {provider: x}"))
    assert wrong_provider.returncode == 1 and "unknown provider 'x'" in wrong_provider.stderr


def test_dry_run_and_diff(cli: Cli, home: Path, tmp_path: Path) -> None:
    dry = cli("apply", "-f", "-", "--dry-run", stdin=AGENTS)
    assert dry.stdout.splitlines()[0] == "agent/finn created (dry run)"
    assert not (home / "agents" / "finn.yaml").exists()
    manifest = tmp_path / "agents.yaml"
    manifest.write_text(AGENTS)
    assert cli("diff", "-f", str(manifest)).returncode == 1  # everything would be created
    assert cli("apply", "-f", str(manifest)).returncode == 0
    same = cli("diff", "-f", str(manifest))
    assert same.returncode == 0 and same.stdout == ""
    manifest.write_text(AGENTS.replace("model: qwen2.5-coder", "model: llama3.2"))
    changed = cli("diff", "-f", str(manifest))
    assert changed.returncode == 1
    assert "-  model: qwen2.5-coder" in changed.stdout and "+  model: llama3.2" in changed.stdout
    assert cli("apply", "-f", str(manifest), "--dry-run").stdout.splitlines()[1] == "agent/pax configured (dry run)"
    assert "qwen2.5-coder" in (home / "agents" / "pax.yaml").read_text()  # the dry run wrote nothing


def test_delete_by_file_and_several_names(applied: Cli, tmp_path: Path) -> None:
    manifest = tmp_path / "one.yaml"
    manifest.write_text(AGENTS.split("---")[0])
    assert applied("delete", "-f", str(manifest)).stdout.strip() == "agent/finn deleted"
    both = applied("delete", "agent", "pax", "ops")
    assert both.returncode == 0 and both.stdout.split("\n")[:2] == ["agent/pax deleted", "agent/ops deleted"]
    missing = applied("delete", "agent/pax")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_hand_written_file_keeps_comments_through_stop_and_start(cli: Cli, home: Path) -> None:
    text = textwrap.dedent(
        """\
        # Finn: the finance helper
        apiVersion: clawpen.dev/v1alpha1
        kind: Agent
        metadata: {name: finn, labels: {team: finance}}
        spec:
          provider: ollama   # the local model server
          model: "llama3.2"
          state: Running     # flipped by clawpen stop/start
          env:
            B: "2"   # order kept
            A: "1"
        """
    )
    (home / "agents").mkdir(parents=True)
    (home / "agents" / "finn.yaml").write_text(text)
    assert cli("stop", "finn").stdout.strip() == "agent/finn stopped"
    assert (home / "agents" / "finn.yaml").read_text() == text.replace("state: Running ", "state: Stopped ")
    assert cli("start", "finn").returncode == 0
    assert (home / "agents" / "finn.yaml").read_text() == text


def test_edit_validates_before_saving(applied: Cli, home: Path, tmp_path: Path) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1]); t = p.read_text()\n"
        "p.write_text(t.replace('qwen2.5-coder', 'llama3.2') + '# edited by hand\\n')\n"
    )
    done = applied("edit", "agent", "pax", env={"EDITOR": f"{sys.executable} {editor}"})
    assert done.returncode == 0 and done.stdout.strip() == "agent/pax edited"
    assert "llama3.2" in (home / "agents" / "pax.yaml").read_text()
    assert "# edited by hand" in (home / "agents" / "pax.yaml").read_text()
    # An invalid edit reopens the editor with the error on top; saving that unchanged gives up.
    breaker = tmp_path / "breaker.py"
    breaker.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1]); t = p.read_text()\n"
        "if 'clawpen edit error' not in t: p.write_text(t.replace('provider: ollama', 'provider: nosuch'))\n"
    )
    before = (home / "agents" / "pax.yaml").read_text()
    failed = applied("edit", "agent/pax", env={"EDITOR": f"{sys.executable} {breaker}"})
    assert failed.returncode == 1 and "unknown provider 'nosuch'" in failed.stderr
    assert (home / "agents" / "pax.yaml").read_text() == before


def test_explain_reads_the_models(cli: Cli) -> None:
    out = cli("explain", "agent.spec.resources").stdout
    assert "FIELD:    resources <Object>" in out and "memoryMB\t<integer>" in out and "preset" in out
    spec = cli("explain", "agent.spec").stdout.split("FIELDS:", 1)[1]
    described = [line for line in spec.splitlines() if line.startswith("    ")]
    fields = [line for line in spec.splitlines() if line.startswith("  ") and not line.startswith("    ")]
    assert len(described) == len(fields)  # every spec field has a description
    unknown = cli("explain", "agent.spec.nope")
    assert unknown.returncode == 1 and "has no field 'nope'" in unknown.stderr


def test_completion_scripts(cli: Cli) -> None:
    bash = cli("completion", "bash").stdout
    assert "complete -F _clawpen clawpen" in bash and " restart " in bash
    assert subprocess.run(["bash", "-n"], input=bash, text=True, check=False).returncode == 0
    assert cli("completion", "zsh").stdout.startswith("#compdef clawpen")
    assert "complete -c clawpen" in cli("completion", "fish").stdout


def test_status_with_nothing_running(applied: Cli, home: Path) -> None:
    out = applied("status").stdout
    assert f"home:        {home}" in out
    assert "controller:  not running" in out and "gateway:     not running" in out
    assert "agents:      3 (3 Pending)" in out


def test_wait_times_out_with_the_reason(applied: Cli) -> None:
    answer = applied("wait", "agent/finn", "--for=condition=Ready", "--timeout=1s")
    assert answer.returncode == 1 and "timed out after 1s waiting for agent/finn" in answer.stderr


def test_get_watch_prints_changes(applied: Cli, home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "get", "agents", "-w", "--no-headers", "-o", "name"],
        env={**os.environ, "CLAWPEN_HOME": str(home)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = [proc.stdout.readline().strip() for _ in range(3)]
        assert first == ["agent/finn", "agent/ops", "agent/pax"]
        # The list is printed after the watch subscribed: a change now is seen.
        assert applied("stop", "finn").returncode == 0
        assert proc.stdout.readline().strip() == "agent/finn"
        assert applied("delete", "agent", "ops").returncode == 0
        assert proc.stdout.readline().strip() == "agent/ops deleted"
    finally:
        proc.terminate()
        proc.wait(10)


def test_secrets_messages(applied: Cli) -> None:
    as_argument = applied("secrets", "set", "OPENAI_API_KEY", "sk-oops")
    assert as_argument.returncode == 1 and "never a command-line argument" in as_argument.stderr
    assert "secrets set OPENAI_API_KEY" in as_argument.stderr
    warned = applied("secrets", "set", "TOKEN", "--agent", "nosuch", stdin="v")
    assert warned.returncode == 0 and "there is no agent 'nosuch'" in warned.stderr
    quiet = applied("secrets", "set", "TOKEN", "--agent", "finn", stdin="v")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert applied("secrets", "set", "GLOBAL_ONE", stdin="v").returncode == 0
    listed = applied("secrets", "list").stdout
    assert "GLOBAL_ONE" in listed and "finn" in listed and "nosuch" in listed  # every scope, with its agent
    only_global = applied("secrets", "list", "--global").stdout
    assert "GLOBAL_ONE" in only_global and "TOKEN" not in only_global


def test_every_positional_argument_has_help() -> None:
    """Item 15: `clawpen CMD --help` explains each positional argument, for every command."""
    import argparse

    from controller.cli import build_parser

    missing = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif not action.option_strings and action.help is None:
                missing.append(f"clawpen {' '.join(path)} {action.dest}")

    walk(build_parser(), [])
    assert not missing


def test_help_texts_name_every_positional(cli: Cli) -> None:
    for command in ("get", "chat", "restart"):  # the rest: test_every_positional_argument_has_help
        text = cli(command, "--help").stdout
        positional = text.split("positional arguments:", 1)[1].split("options:", 1)[0]
        for line in positional.strip().splitlines():
            if not line.startswith("    "):
                assert len(line.split(None, 1)) == 2, f"`clawpen {command}`: {line.strip()} has no help"


HEAD = "apiVersion: clawpen.dev/v1alpha1\nkind: Agent\nmetadata: {name: "


def test_apply_refuses_what_the_volume_policy_forbids_and_writes_nothing(cli: Cli, home: Path, tmp_path: Path) -> None:
    """Issue 10: a manifest breaking the volume or interpolation policy is refused up front, naming the
    field and the rule, instead of being stored and going Failed(VolumeNotAllowed) later."""
    shared = tmp_path / "shared"
    (shared / "inside").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (shared / "link").symlink_to(outside)  # Docker follows the link: judged on where it points
    cases = {
        f"volumes: [{{source: '{outside}', target: /mnt/x}}]": ("spec.volumes[0].source", "host bind mounts are off"),
        "volumes: [{source: clawpen_default_default_victim_data, target: /mnt/x}]": (
            "spec.volumes[0].source",
            "belongs to Claw Pen",
        ),
        "volumes: [{source: somebodys-volume, target: /mnt/x}]": ("spec.volumes[0].source", "CLAWPEN_ALLOWED_VOLUMES"),
        "env: {A: '${CLAWPEN_SECRET_KEY}'}": ("spec.env.A", "it looks like a secret"),
        "env: {A: '${CLAWPEN_HOME}'}": ("spec.env.A", "CLAWPEN_* settings are never interpolated"),
        "env: {A: '${HOME}'}": ("spec.env.A", "CLAWPEN_INTERPOLATE_VARS"),
    }
    for n, (extra, (field, rule)) in enumerate(cases.items()):
        manifest = (
            AGENTS + f"---\n{HEAD}bad}}\nspec: {{{extra}}}\n"
        )
        verbs = [("apply", "-f", "-")] + ([("apply", "--dry-run", "-f", "-"), ("diff", "-f", "-")] if n == 0 else [])
        for verb in verbs:
            answer = cli(*verb, stdin=manifest)
            assert answer.returncode == 1, (extra, verb, answer.stdout, answer.stderr)
            assert f"agent/bad: {field}: " in answer.stderr and rule in answer.stderr, (extra, answer.stderr)
            assert "nothing was applied" in answer.stderr
        assert not (home / "agents").exists() or not list((home / "agents").glob("*.yaml"))
    # Opened up by the operator: the same shapes apply; a symlink out of the allowed directory does not.
    opened = {"CLAWPEN_HOST_MOUNTS": str(shared), "CLAWPEN_INTERPOLATE_VARS": "HOME"}
    good = f"spec: {{volumes: [{{source: '{shared / 'inside'}', target: /mnt/x}}], env: {{A: '${{HOME}}'}}}}"
    ok = cli(
        "apply",
        "-f",
        "-",
        stdin=f"{HEAD}good}}\n{good}\n",
        env=opened,
    )
    assert ok.returncode == 0, ok.stderr
    assert (home / "agents" / "good.yaml").exists()
    linked = f"spec: {{volumes: [{{source: '{shared / 'link'}', target: /mnt/x}}]}}"
    refused = cli(
        "apply",
        "-f",
        "-",
        stdin=f"{HEAD}linked}}\n{linked}\n",
        env=opened,
    )
    assert refused.returncode == 1 and f"resolves to '{outside}'" in refused.stderr, refused.stderr
    assert not (home / "agents" / "linked.yaml").exists()


def test_get_templates_shows_each_warm_pool(cli: Cli, home: Path, tmp_path: Path) -> None:
    env = {"CLAWPEN_TEMPLATES_DIR": str(templates_with(tmp_path / "templates", pooled=POOLED))}
    listed = cli("get", "templates", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PROGRAM", "PROVIDER", "MODEL", "POOL"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "pooled" in rows and "coding-assistant" in rows
    assert rows["pooled"].endswith("off (no report from the controller yet: is it running?)")
    assert rows["coding-assistant"].split()[-1] == "-"  # no warmPool: no pool

    save_report(status_path(home), {"pooled": PoolStatus(2, ready=1, starting=1)})  # what the pool task writes
    one = cli("get", "template/pooled", "--no-headers", env=env)
    assert one.stdout.split()[0] == "pooled" and one.stdout.rstrip().endswith("1/2 ready, 1 starting"), one.stderr
    doc = json.loads(cli("get", "templates", "pooled", "-o", "json", env=env).stdout)
    assert doc["id"] == "pooled"
    assert doc["warm_pool"] == {"size": 2, "ready": 1, "starting": 1, "enabled": True, "reason": None}
    every = json.loads(cli("get", "templates", "-o", "json", env=env).stdout)
    assert [d["id"] for d in every if "warm_pool" in d] == ["pooled"]  # the API's documents
    assert cli("get", "templates", "-o", "name", env=env).stdout.split()[0] == "template/coding-assistant"
    missing = cli("get", "templates", "nope", env=env)
    assert missing.returncode != 0 and "template 'nope' not found" in missing.stderr
