"""Modal models as Modal itself counts them: containers, inputs running and queued, from its stats API.

``Function.get_current_stats()`` asks the control plane (``FunctionGetCurrentStats``,
modal/_functions.py in modal 1.6.4) for live input and container counts: a read of
Modal's own bookkeeping that starts no container and sends no input. A scrape of the
public URL would land on one random replica and, every 15 s, keep a scale-to-zero GPU
awake forever, so the fleet never does one. Engine figures (TTFT, tokens) are not in
these counts: a Modal Server reports its engine's (TTFT, inter-token latency, tokens/s)
to Modal's time-range stats, which ``modal_figures`` reads and ``modal_views`` shows; a
classic endpoint's replicas report theirs in-band, on the answers they relay through the
gateway (``runtime/edge_report.py``), and the gateway's admin-key ``/metrics`` serves them per
replica (``gateway/fleet_metrics.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from modelfleet.catalog import Catalog
from modelfleet.observe.modal_figures import ModalFigures, ModalServing, serving_lookup
from modelfleet.observe.view import TOKENS_PER_MILLION, ModelView
from modelfleet.settings import FleetSettings
from modelfleet.spec.cost import hourly_cost

Round = TypeVar("Round")


@dataclass(frozen=True)
class ModalCurrent:
    """One deployed model's live counts, as Modal reports them."""

    model: str
    containers: int
    running_inputs: int
    backlog: int


@dataclass
class ModalStatsReader:
    """Reads each model's current stats; the serving objects are looked up once, then only stats are asked."""

    settings: FleetSettings
    models: list[str]
    lookup: Callable[[str, str, str], ModalServing | None] = serving_lookup
    found: dict[str, ModalServing] | None = None

    @property
    def servings(self) -> dict[str, ModalServing]:
        """Each deployed model's serving objects (looked up on first use; a model not deployed is left out)."""
        if self.found is None:
            environment = self.settings.modal_environment
            looked_up = {m: self.lookup(m, self.settings.app_name(m), environment) for m in self.models}
            self.found = {m: s for m, s in looked_up.items() if s is not None}
        return self.found

    def read(self) -> list[ModalCurrent]:
        """One round: ``FunctionGetCurrentStats`` per deployed model (no container start, no input)."""
        current: list[ModalCurrent] = []
        for model, serving in sorted(self.servings.items()):
            stats = serving.function.get_current_stats()
            current.append(ModalCurrent(model, stats.num_total_runners, stats.num_running_inputs, stats.backlog))
        return current


def modal_views(
    current: list[ModalCurrent],
    catalog: Catalog,
    prices: dict[str, float],
    figures: dict[str, ModalFigures] | None = None,
) -> list[ModelView]:
    """``fleet top`` rows from Modal's counts: containers and inputs, what the containers cost now at the price
    table, and -- where Modal's last-hour figures have them -- containers being created and a Server's engine
    figures (TTFT, inter-token latency as time per output token, tokens/s)."""
    views: list[ModelView] = []
    for item in current:
        spec = catalog.models[item.model].spec if item.model in catalog.models else None
        hour = (figures or {}).get(item.model)
        per_hour = hourly_cost(spec, prices, item.containers) if spec is not None else None
        tokens_out_per_s = hour.tokens_out_per_s if hour else None
        views.append(
            ModelView(
                model=item.model,
                replicas_running=item.containers,
                replicas_starting=hour.containers_creating if hour else 0,
                requests_running=float(item.running_inputs),
                requests_waiting=float(item.backlog),
                requests_done=0.0,
                ttft_p50=hour.ttft_p50 if hour else None,
                ttft_p95=hour.ttft_p95 if hour else None,
                tpot_p50=hour.inter_token_p50 if hour else None,
                tpot_p95=hour.inter_token_p95 if hour else None,
                tokens_in_per_s=hour.tokens_in_per_s if hour else None,
                tokens_out_per_s=tokens_out_per_s,
                tokens_in=0.0,
                tokens_out=0.0,
                kv_cache_use=None,
                dollars_per_hour=per_hour,
                dollars_per_million_out=(
                    per_hour / (tokens_out_per_s * 3600.0) * TOKENS_PER_MILLION
                    if per_hour is not None and tokens_out_per_s
                    else None
                ),
            )
        )
    return views


def collect_for(
    read: Callable[[], Round],
    seconds: float,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> list[Round]:
    """Collect every ``interval`` seconds for ``seconds`` (the clock and sleep are injectable: tests fake an hour)."""
    rounds: list[Round] = []
    end = clock() + seconds
    while clock() < end:
        rounds.append(read())
        sleep(interval)
    return rounds
