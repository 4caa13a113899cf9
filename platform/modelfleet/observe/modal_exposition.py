"""The fleet's Prometheus series on Modal, built on prometheus-client from Modal's own figures (never hand-written).

Labels ``model``, ``target``, ``environment`` on every model series. There is no ``replica``
label: Modal's stats API counts a model's containers, it does not hand out per-container
engine figures (those would need per-replica pushes). The families, and where each figure
comes from (``modal_watch`` collects them; none wakes a container):

- ``fleet_replicas{state}``, ``fleet_cost_dollars_per_hour``: the same names as the local
  target's: current containers (``FunctionGetCurrentStats``) and containers being created
  (time-range stats), priced by fleet.toml.
- ``fleet_modal_inputs_running`` / ``fleet_modal_inputs_waiting``: current stats.
- ``fleet_modal_inputs_last_hour{outcome}``, ``fleet_modal_containers_last_hour{event}``:
  ``Function.stats`` / ``Server.stats`` over the last hour.
- ``fleet_modal_latency_seconds{kind,quantile}``: Modal's percentiles (execution or end-to-end
  latency; a Server's engine: time to first token, inter-token latency).
- ``fleet_modal_tokens_per_second{direction}``: a Server's engine throughput.
- ``fleet_modal_series{series,unit}``: the latest point of every series Modal's metrics API
  returned, under Modal's own name.
- ``fleet_modal_gpu_seconds``, ``fleet_modal_cost_dollars{source}``,
  ``fleet_modal_cost_difference_dollars``: the cost truth of the last full hour
  (``modal_cost``); ``source`` is ``price_table`` or ``modal_billing``.
- ``fleet_modal_billing_available``, ``fleet_modal_environment_month_to_date_dollars``
  (labels ``target``, ``environment``): whether Modal's billing answered, and its month.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from modelfleet.observe.modal_watch import ModalSnapshot, ModalWatch

MODEL_LABELS = ["model", "target", "environment"]


@dataclass(eq=False)  # identity-hashed: the registry keys its collectors by the object
class ModalCollector:
    """A prometheus-client collector: each ``collect()`` takes one round of the Modal watch."""

    watch: ModalWatch
    target: str
    environment: str

    def collect(self) -> Iterator[Metric]:
        """The fleet's Modal families for this round (the registry calls it on every exposition)."""
        yield from modal_families(self.watch.round(), self.target, self.environment)


def modal_registry(collector: ModalCollector) -> CollectorRegistry:
    """A registry of its own holding only the Modal collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def modal_families(snapshot: ModalSnapshot, target: str, environment: str) -> Iterator[Metric]:
    """Every family of one snapshot (see the module docstring for what each holds)."""
    replicas = _gauge("fleet_replicas", "Replicas of a model by state.", "state")
    cost_now = _gauge("fleet_cost_dollars_per_hour", "What the model's replicas cost now (price table).")
    running = _gauge("fleet_modal_inputs_running", "Inputs being served now (Modal's current stats).")
    waiting = _gauge("fleet_modal_inputs_waiting", "Inputs queued now (Modal's backlog).")
    inputs = _gauge("fleet_modal_inputs_last_hour", "Inputs finished in the last hour by outcome.", "outcome")
    containers = _gauge("fleet_modal_containers_last_hour", "Containers in the last hour by event.", "event")
    latency = _gauge("fleet_modal_latency_seconds", "Modal's latency percentiles, last hour.", "kind", "quantile")
    tokens = _gauge("fleet_modal_tokens_per_second", "A Modal Server engine's tokens/s, last hour.", "direction")
    series = _gauge("fleet_modal_series", "Latest point of each Modal metrics series.", "series", "unit")
    gpu_seconds = _gauge("fleet_modal_gpu_seconds", "GPU-seconds in the last full hour (Modal's container counts).")
    cost = _gauge("fleet_modal_cost_dollars", "Cost of the last full hour by source.", "source")
    difference = _gauge("fleet_modal_cost_difference_dollars", "Modal's bill minus the price table, last full hour.")
    for view in snapshot.views:
        labels = [view.model, target, environment]
        replicas.add_metric([*labels, "running"], view.replicas_running)
        replicas.add_metric([*labels, "starting"], view.replicas_starting)
        running.add_metric(labels, view.requests_running)
        waiting.add_metric(labels, view.requests_waiting)
        if view.dollars_per_hour is not None:
            cost_now.add_metric(labels, view.dollars_per_hour)
    for model, figures in sorted(snapshot.figures.items()):
        labels = [model, target, environment]
        inputs.add_metric([*labels, "succeeded"], figures.inputs_succeeded)
        inputs.add_metric([*labels, "failed"], figures.inputs_failed)
        for event, count in (
            ("active", figures.containers_active),
            ("started", figures.containers_started),
            ("errored", figures.container_errors),
        ):
            containers.add_metric([*labels, event], count)
        for kind, quantile, value in (
            ("request", "0.5", figures.latency_p50),
            ("request", "0.95", figures.latency_p95),
            ("time_to_first_token", "0.5", figures.ttft_p50),
            ("time_to_first_token", "0.95", figures.ttft_p95),
            ("inter_token", "0.5", figures.inter_token_p50),
            ("inter_token", "0.95", figures.inter_token_p95),
        ):
            if value is not None:
                latency.add_metric([*labels, kind, quantile], value)
        for direction, rate in (("in", figures.tokens_in_per_s), ("out", figures.tokens_out_per_s)):
            if rate is not None:
                tokens.add_metric([*labels, direction], rate)
        for name, point in figures.series.items():
            series.add_metric([*labels, name, point.unit], point.value)
    for truth in snapshot.costs:
        labels = [truth.model, target, environment]
        if truth.gpu_seconds is not None:
            gpu_seconds.add_metric(labels, truth.gpu_seconds)
        if truth.price_table_dollars is not None:
            cost.add_metric([*labels, "price_table"], truth.price_table_dollars)
        if truth.billed_dollars is not None:
            cost.add_metric([*labels, "modal_billing"], truth.billed_dollars)
        if truth.difference_dollars is not None:
            difference.add_metric(labels, truth.difference_dollars)
    yield from (replicas, cost_now, running, waiting, inputs, containers, latency, tokens, series)
    yield from (gpu_seconds, cost, difference)
    yield from _billing_families(snapshot, target, environment)


def _billing_families(snapshot: ModalSnapshot, target: str, environment: str) -> Iterator[Metric]:
    billing = snapshot.billing
    if billing is None:
        return
    available = GaugeMetricFamily(
        "fleet_modal_billing_available", "1 when Modal's billing API answered.", labels=["target", "environment"]
    )
    available.add_metric([target, environment], 1.0 if billing.refused is None else 0.0)
    yield available
    if billing.month_to_date is not None:
        month = GaugeMetricFamily(
            "fleet_modal_environment_month_to_date_dollars",
            "Modal's metered cost of the environment this billing cycle.",
            labels=["target", "environment"],
        )
        month.add_metric([target, environment], billing.month_to_date)
        yield month


def _gauge(name: str, documentation: str, *extra: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=[*MODEL_LABELS, *extra])
