"""Modal models as Modal itself counts them: containers, inputs running and queued, from its stats API.

``Function.get_current_stats()`` asks the control plane (``FunctionGetCurrentStats``,
modal/_functions.py in modal 1.6.4) for live input and container counts: a read of
Modal's own bookkeeping that starts no container and sends no input. A scrape of the
public URL would land on one random replica and, every 15 s, keep a scale-to-zero GPU
awake forever, so the fleet never does one. Engine figures (TTFT, tokens) are not in
these counts; they need per-replica pushes, which are not built yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelfleet.catalog import Catalog
from modelfleet.observe.view import ModelView
from modelfleet.settings import FleetSettings
from modelfleet.spec.cost import hourly_cost
from modelfleet.targets.modal.app import SERVER_CLASS


@dataclass(frozen=True)
class ModalCurrent:
    """One deployed model's live counts, as Modal reports them."""

    model: str
    containers: int
    running_inputs: int
    backlog: int


def service_function(app_name: str, environment: str) -> Any | None:
    """The deployed app's serving Function (a Modal Server's or the classic class's), hydrated; None if not deployed.

    The live version is a Modal Server or a classic web endpoint (targets/modal/primitive.py);
    both are backed by one Function. ``_get_service_function`` (modal/_server.py) and
    ``_get_class_service_function`` (modal/cls.py) are the client's own accessors for it:
    modal 1.6.4 has no public ``get_current_stats`` on a Server or a Cls.
    """
    import modal
    from modal.exception import NotFoundError

    try:
        server = modal.Server.from_name(app_name, SERVER_CLASS, environment_name=environment).hydrate()
        return server._get_service_function()
    except NotFoundError:
        pass
    try:
        cls = modal.Cls.from_name(app_name, SERVER_CLASS, environment_name=environment).hydrate()
        return cls._get_class_service_function()
    except NotFoundError:
        return None


@dataclass
class ModalStatsReader:
    """Reads each model's current stats; the serving Functions are looked up once, then only stats are asked."""

    settings: FleetSettings
    models: list[str]
    lookup: Callable[[str, str], Any | None] = service_function
    functions: dict[str, Any] | None = None

    def read(self) -> list[ModalCurrent]:
        """One round: ``FunctionGetCurrentStats`` per deployed model (no container start, no input)."""
        if self.functions is None:
            environment = self.settings.modal_environment
            found = {m: self.lookup(self.settings.app_name(m), environment) for m in self.models}
            self.functions = {m: f for m, f in found.items() if f is not None}
        current: list[ModalCurrent] = []
        for model, function in sorted(self.functions.items()):
            stats = function.get_current_stats()
            current.append(ModalCurrent(model, stats.num_total_runners, stats.num_running_inputs, stats.backlog))
        return current


def modal_views(current: list[ModalCurrent], catalog: Catalog, prices: dict[str, float]) -> list[ModelView]:
    """``fleet top`` rows from Modal's counts: containers and inputs, and what the containers cost now."""
    views: list[ModelView] = []
    for item in current:
        spec = catalog.models[item.model].spec if item.model in catalog.models else None
        views.append(
            ModelView(
                model=item.model,
                replicas_running=item.containers,
                replicas_starting=0,
                requests_running=float(item.running_inputs),
                requests_waiting=float(item.backlog),
                requests_done=0.0,
                ttft_p50=None,
                ttft_p95=None,
                tpot_p50=None,
                tpot_p95=None,
                tokens_in_per_s=None,
                tokens_out_per_s=None,
                tokens_in=0.0,
                tokens_out=0.0,
                kv_cache_use=None,
                dollars_per_hour=hourly_cost(spec, prices, item.containers) if spec is not None else None,
                dollars_per_million_out=None,
            )
        )
    return views


def collect_for(
    read: Callable[[], list[ModalCurrent]],
    seconds: float,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> list[list[ModalCurrent]]:
    """Collect every ``interval`` seconds for ``seconds`` (the clock and sleep are injectable: tests fake an hour)."""
    rounds: list[list[ModalCurrent]] = []
    end = clock() + seconds
    while clock() < end:
        rounds.append(read())
        sleep(interval)
    return rounds
