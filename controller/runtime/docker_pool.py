"""Warm pool on a local Docker engine: started, unconfigured containers an agent can claim at once.

A pool container (a *slot*) is created exactly as an agent of its template would be (same image,
limits, hardening, network; see controller.warm_pool.shape), but with its own name
(`clawpen-pool_<instance>_<slot>`), pool labels instead of an agent's, volumes of its own, and a
secret directory holding only the program's placeholder files (no key, no agent token). A claim:

1. under a lock (two reconcile workers never take the same slot), picks a running slot of the plan's
   shape whose readiness path answers, renames it to the agent's container name and records the
   claim (controller.warm_pool.claims) before anything else can see it;
2. writes the agent's config, keys and token into the slot's secret directory (the program reloads
   it: see OpenClawProgram.claim_files) and waits until the program answers the agent's token;
3. pins the slot's host port as the agent's stable port. A claim that does not come alive in time is
   undone (container, volumes and files removed) and the agent is created the ordinary way.

The pool task (controller.warm_pool.task) calls refill() to keep each shape at its size and to drain
slots whose shape no template wants any more (a template's image or program changed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker.errors
import httpx

from controller.agent_token import TOKEN_NAME
from controller.plan import LABEL_INSTANCE, LABEL_KIND, LABEL_MANAGED, MANAGED_BY, WorkloadPlan
from controller.programs import program_named, warm_pool_program
from controller.programs.openclaw import POOL_SECRETS_FILE
from controller.runtime.base import Observed
from controller.runtime.docker_names import container_name
from controller.runtime.docker_parse import observed_from_attrs
from controller.runtime.docker_ports import free_port
from controller.warm_pool.claims import Claim, ClaimBook
from controller.warm_pool.shape import claimable, pool_env, shape

if TYPE_CHECKING:
    from controller.runtime.docker import DockerRuntime

log = logging.getLogger("clawpen.warm_pool")

LABEL_POOL_SHAPE = "clawpen.dev/pool-shape"
LABEL_POOL_TEMPLATE = "clawpen.dev/pool-template"
POOL_KIND = "WarmPool"
WARM_UP_TIMEOUT_S = 300.0
CLAIM_TIMEOUT_S = 60.0  # a loaded 2-core machine applies OpenClaw's reload in ~1-2 s; this is the give-up


@dataclass(frozen=True)
class Slot:
    name: str
    container_id: str
    shape: str
    template: str
    running: bool
    endpoint: str | None
    state: str = "running"


def slot_prefix(instance: str) -> str:
    # "clawpen-pool_" can never be an agent's container name ("clawpen_<instance>_<ns>_<name>").
    return f"clawpen-pool_{instance}_"


class DockerWarmPool:
    def __init__(self, runtime: DockerRuntime, claims: ClaimBook, *, claim_timeout: float = CLAIM_TIMEOUT_S):
        self.runtime = runtime
        self.claims = claims
        self.claim_timeout = claim_timeout
        self._lock = threading.Lock()  # slot selection + rename: one claimer at a time
        self.claimed = threading.Event()  # set after each claim: the pool task refills at once
        self._warm: set[str] = set()  # slot container ids that ran their warm-up turn
        self._warming: set[str] = set()
        self.last_pass: list[tuple[str, bool]] = []  # (shape, answers) of the slots refill() kept or made

    @property
    def client(self) -> Any:
        return self.runtime.client

    def _filters(self) -> dict[str, list[str]]:
        instance = self.runtime.instance
        return {"label": [f"{LABEL_MANAGED}={MANAGED_BY}", f"{LABEL_INSTANCE}={instance}", LABEL_POOL_SHAPE]}

    def slots(self) -> list[Slot]:
        """Unclaimed pool containers of this installation (claimed ones carry an agent's name)."""
        prefix = slot_prefix(self.runtime.instance)
        out = []
        for container in self.client.containers.list(all=True, filters=self._filters()):
            if not container.name.startswith(prefix) or self.claims.by_container(container.id):
                continue  # claimed: renamed to its agent (or about to be)
            labels = container.labels or {}
            observed = observed_from_attrs(container.name, container.attrs, self.runtime.engine.endpoint_host)
            out.append(
                Slot(
                    container.name,
                    container.id,
                    labels.get(LABEL_POOL_SHAPE, ""),
                    labels.get(LABEL_POOL_TEMPLATE, ""),
                    observed.running,
                    observed.endpoint,
                    observed.state,
                )
            )
        return out

    # -- keeping the pool --------------------------------------------------------------------------------

    def refill(self, wanted: dict[str, tuple[WorkloadPlan, int, str]]) -> tuple[int, int]:
        """wanted: shape → (pool plan, size, template). Removes slots of shapes nobody wants, surplus
        and dead ones; creates missing ones, but only while no other slot of that shape is still
        booting: two OpenClaw boots at once on a busy 2-core machine both miss OpenClaw's own startup
        deadlines (Docker's restart policy then restarts them, slower still). Returns (created, removed)."""
        created = removed = 0
        counts: dict[str, int] = {}
        booting: dict[str, int] = {}
        kept: list[tuple[str, bool]] = []
        for slot in self.slots():
            want = wanted.get(slot.shape)
            if want is None or slot.state in ("exited", "dead") or counts.get(slot.shape, 0) >= want[1]:
                self.remove_slot(slot.name)
                removed += 1
                continue
            counts[slot.shape] = counts.get(slot.shape, 0) + 1
            answers = bool(slot.running and slot.endpoint and self._answers(slot.endpoint, want[0].readiness_path))
            kept.append((slot.shape, answers))
            if not answers:
                booting[slot.shape] = booting.get(slot.shape, 0) + 1
            elif slot.container_id not in self._warm:
                self._start_warm_up(slot, want[0])  # claimable meanwhile; the next slot may boot
        for key, (plan, size, template) in wanted.items():
            if counts.get(key, 0) < size and not booting.get(key):
                self.create_slot(plan, template)
                kept.append((key, False))
                created += 1
        self.last_pass = kept  # what the pool task reports (controller.warm_pool.status)
        return created, removed

    def create_slot(self, plan: WorkloadPlan, template: str) -> str:
        program = warm_pool_program(program_named(plan.program))
        if program is None:
            raise ValueError(f"the {plan.program} program cannot be pooled")
        runtime = self.runtime
        pool_shape = shape(plan)
        slot = f"{pool_shape[:8]}-{secrets.token_hex(4)}"
        name = slot_prefix(runtime.instance) + slot
        labels = {
            LABEL_MANAGED: MANAGED_BY,
            LABEL_INSTANCE: runtime.instance,
            LABEL_KIND: POOL_KIND,
            LABEL_POOL_SHAPE: pool_shape,
            LABEL_POOL_TEMPLATE: template,
        }
        mounts = []
        for target in ("/data", "/workspace"):
            volume = f"{name}_{target.strip('/')}"
            self.client.volumes.create(volume, labels=labels)
            mounts.append(docker.types.Mount(target, volume, type="volume"))
        directory = self.secrets_dir(slot)
        # A throwaway gateway token only this process ever held: the slot serves nobody until claimed.
        runtime.write_secret_files(directory, plan.user, program.pool_files(secrets.token_urlsafe(24)))
        mounts.append(docker.types.Mount("/run/secrets", str(directory), type="bind", read_only=True))
        image = runtime.image_for(plan)
        with runtime.network_lock:
            network = runtime.ensure_network_locked(plan.key)
        engine_runtime = runtime.engine_runtime(plan)
        container = runtime.create_container(
            plan, image, pool_env(plan), mounts, network, free_port(), engine_runtime, name=name, labels=labels
        )
        container.start()
        log.info("warm pool: started %s for template %s", name, template)
        return name

    def warmed(self) -> set[str]:
        """Container ids of slots that finished their warm-up turn."""
        with self._lock:
            return set(self._warm)

    def _start_warm_up(self, slot: Slot, plan: WorkloadPlan) -> None:
        """OpenClaw's first chat turn loads most of its agent runtime (tens of seconds on a busy
        machine). A ready slot runs one turn against its placeholder model (which fails at once:
        nothing listens there) so that a claimed agent's first reply does not pay for it."""
        with self._lock:
            if slot.container_id in self._warming or slot.container_id in self._warm:
                return
            self._warming.add(slot.container_id)
        threading.Thread(target=self._warm_up, args=(slot, plan), daemon=True, name=f"warm-{slot.name}").start()

    def _warm_up(self, slot: Slot, plan: WorkloadPlan) -> None:
        try:
            directory = self.secrets_dir(slot.name.removeprefix(slot_prefix(self.runtime.instance)))
            token = json.loads((directory / POOL_SECRETS_FILE).read_text())["token"]
            request = program_named(plan.program).chat_request("warm up", "warm-up", None)
            body = {**request.body, "stream": False}
            headers = {**request.headers, "Authorization": f"Bearer {token}"}
            httpx.post(f"{slot.endpoint}{request.path}", json=body, headers=headers, timeout=WARM_UP_TIMEOUT_S)
        except (OSError, ValueError, KeyError, httpx.HTTPError) as err:
            log.info("warm pool: warm-up of %s: %s", slot.name, err)
        finally:
            with self._lock:
                self._warming.discard(slot.container_id)
                self._warm.add(slot.container_id)

    def secrets_dir(self, slot: str) -> Path:
        return self.runtime.secrets_root / f"_pool-{slot}"  # "_" starts no namespace: no agent's directory

    def remove_slot(self, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(name).remove(force=True)
        for target in ("data", "workspace"):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.client.volumes.get(f"{name}_{target}").remove(force=True)
        self.runtime.remove_secret_dir(self.secrets_dir(name.removeprefix(slot_prefix(self.runtime.instance))))

    def drain(self) -> int:
        """Remove every unclaimed slot (pool size 0 everywhere, or shutting the pool down)."""
        slots = self.slots()
        for slot in slots:
            self.remove_slot(slot.name)
        return len(slots)

    # -- claiming ----------------------------------------------------------------------------------------

    def claim(self, plan: WorkloadPlan, files: dict[str, bytes]) -> Observed | None:
        """Give the agent of `plan` a warm slot, configured and answering; None when there is none
        (or it did not come alive), and the caller creates a container the ordinary way."""
        program = warm_pool_program(program_named(plan.program))
        if program is None or not claimable(plan):
            return None
        try:
            claim_files = program.claim_files(files, TOKEN_NAME)
        except (KeyError, ValueError):
            return None
        token = files.get(TOKEN_NAME, b"").decode(errors="replace")
        picked = self._take(plan)
        if picked is None:
            return None
        slot, claim = picked
        self.claimed.set()
        started = time.monotonic()
        try:
            self.runtime.write_secret_files(Path(str(claim.secrets_dir)), plan.user, claim_files)
            if not self._wait_live(slot.endpoint or "", program.claim_check_path, token):
                raise TimeoutError(f"no answer to the agent's token within {self.claim_timeout:.0f} s")
        except Exception as err:  # noqa: BLE001 - any failure: undo, and the agent is created afresh
            log.warning("warm pool: claim of %s for %s failed (%s); creating one instead", slot.name, plan.key, err)
            self._undo(plan.key, slot)
            return None
        if claim.port:
            self.runtime.ports.remember(plan.key, claim.port)
        log.info("warm pool: %s claimed %s in %.2f s", plan.key, slot.name, time.monotonic() - started)
        return self.runtime.observe_now(plan.key)

    def rewrite(self, plan: WorkloadPlan, directory: Path, files: dict[str, bytes]) -> None:
        """Write a claimed agent's files again (tmpfs is empty after a host reboot)."""
        program = warm_pool_program(program_named(plan.program))
        if program is not None and files:
            self.runtime.write_secret_files(directory, plan.user, program.claim_files(files, TOKEN_NAME))

    def _take(self, plan: WorkloadPlan) -> tuple[Slot, Claim] | None:
        wanted = shape(plan)
        prefix = slot_prefix(self.runtime.instance)
        with self._lock:
            for slot in sorted(self.slots(), key=lambda s: s.container_id not in self._warm):  # warm first
                if slot.shape != wanted or not slot.running or not slot.endpoint:
                    continue
                if not self._answers(slot.endpoint, plan.readiness_path):
                    continue  # still booting
                container = self.client.containers.get(slot.container_id)
                ports = ((container.attrs.get("HostConfig") or {}).get("PortBindings") or {}).get(f"{plan.port}/tcp")
                port = int(ports[0]["HostPort"]) if ports and str(ports[0].get("HostPort", "")).isdigit() else None
                name = slot.name.removeprefix(prefix)
                claim = Claim(
                    key=plan.key,
                    volumes={"/data": f"{slot.name}_data", "/workspace": f"{slot.name}_workspace"},
                    container=slot.container_id,
                    plan_hash=plan.hash,
                    secrets_dir=str(self.secrets_dir(name)),
                    port=port,
                )
                self.claims.put(claim)  # before the rename: a crash in between leaves a record, not a stray
                container.rename(container_name(self.runtime.instance, plan.key))
                return slot, claim
        return None

    def _undo(self, key: str, slot: Slot) -> None:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.client.containers.get(slot.container_id).remove(force=True)
        for volume in (f"{slot.name}_data", f"{slot.name}_workspace"):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.client.volumes.get(volume).remove(force=True)
        claim = self.claims.get(key)
        if claim is not None and claim.secrets_dir:
            self.runtime.remove_secret_dir(Path(claim.secrets_dir))
        self.claims.forget(key)

    @staticmethod
    def _answers(endpoint: str, path: str) -> bool:
        try:
            return httpx.get(f"{endpoint}{path}", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _wait_live(self, endpoint: str, path: str, token: str) -> bool:
        deadline = time.monotonic() + self.claim_timeout
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get(f"{endpoint}{path}", headers=headers).status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        return False
