"""``fleet new``'s GPU pick: the cheapest type and count in the price table that fits the model.

Every priced GPU type is weighed at 1, 2, 4 and 8 GPUs (tensor parallel, one shard per GPU)
with the spec's own fit arithmetic (``spec/fit.py``, the one the ``gpu`` lint runs), but with
the KV cache sized for ``concurrency`` sequences of ``max_model_len`` tokens each: the lint's one
sequence is what vLLM needs to start, not what a deployment needs to serve. A candidate is
refused outright when it cannot run the checkpoint at all (bf16 on a GPU without bf16, a head
count the GPUs cannot split). The winner is the cheapest fit per container-hour; on a tie, fewer
GPUs (a one-GPU model keeps its GPU snapshot), then more memory. Fallbacks are the next cheapest
types that fit at the same count: the tensor-parallel size is one number for every option.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelfleet.errors import FleetError
from modelfleet.spec.fit import GpuFit, gpu_fit
from modelfleet.spec.gpus import (
    BF16_MIN_CAPABILITY,
    COMPUTE_CAPABILITY,
    FP8_NATIVE_MIN_CAPABILITY,
    KNOWN_GPUS,
    parse_gpu_ref,
)

GPU_COUNTS: tuple[int, ...] = (1, 2, 4, 8)
MAX_FALLBACKS = 2


class SizingError(FleetError):
    """No GPU option fits, or the one asked for does not; the message has the numbers and the fix."""


@dataclass(frozen=True)
class Demand:
    """What the model needs of a GPU option."""

    weights_gb: float
    kv_bytes_per_token: float
    max_model_len: int
    concurrency: int
    utilization: float
    compute_dtype: str | None
    """bfloat16 / float16 / float32 of the unquantized parts (config.json ``torch_dtype``), when known."""
    weights_dtype: str
    attention_heads: int

    @property
    def kv_gb(self) -> float:
        """KV cache for ``concurrency`` sequences of ``max_model_len`` tokens, 16-bit."""
        return self.kv_bytes_per_token * self.max_model_len * self.concurrency / 1e9

    @property
    def kv_for(self) -> str:
        """What the KV cache is sized for, as the fit message says it."""
        return f"for {self.concurrency} x {self.max_model_len} tokens"

    def fit(self, gpu: str, count: int) -> GpuFit:
        """This demand against ``count`` x ``gpu``, in the lint's arithmetic."""
        return gpu_fit(
            gpu, count, weights_gb=self.weights_gb, kv_gb=self.kv_gb, kv_for=self.kv_for, utilization=self.utilization
        )


@dataclass(frozen=True)
class Candidate:
    """One GPU option weighed: its fit, its price, and why it cannot run the model at all (if so)."""

    fit: GpuFit
    price_per_gpu: float | None
    refused: str | None
    note: str | None = None
    """Runs, with a caveat worth printing (FP8 weight-only below SM 8.9)."""

    @property
    def gpu(self) -> str:
        """GPU type."""
        return self.fit.gpu

    @property
    def count(self) -> int:
        """GPUs per container."""
        return self.fit.count

    @property
    def hourly(self) -> float:
        """$/h of one container ($0 for a GPU the table has no price for)."""
        return (self.price_per_gpu or 0.0) * self.count

    @property
    def usable(self) -> bool:
        """Runs the model and fits it."""
        return self.refused is None and self.fit.fits

    @property
    def ref(self) -> str:
        """Modal's notation: ``H100`` or ``H100:2``."""
        return f"{self.gpu}:{self.count}" if self.count > 1 else self.gpu

    def verdict(self) -> str:
        """``fits, 12.3 GB spare`` / ``4.2 GB short`` / the refusal."""
        if self.refused:
            return self.refused
        if self.fit.fits:
            return f"fits, {self.fit.spare_gb:.1f} GB spare" + (f" ({self.note})" if self.note else "")
        return f"{self.fit.shortfall_gb:.1f} GB short"


@dataclass(frozen=True)
class GpuChoice:
    """The pick, the fallbacks, what was weighed and why the winner won."""

    winner: Candidate
    fallbacks: tuple[Candidate, ...]
    weighed: tuple[Candidate, ...]
    """Per priced GPU type, its smallest count that fits (else its closest attempt), cheapest first."""
    reason: str


def candidate(demand: Demand, gpu: str, count: int, prices: Mapping[str, float]) -> Candidate:
    """``count`` x ``gpu`` weighed against ``demand``."""
    capability = COMPUTE_CAPABILITY[gpu]
    refused = None
    note = None
    if demand.attention_heads % count:
        refused = f"{demand.attention_heads} attention heads do not split over {count} GPUs"
    elif demand.compute_dtype == "bfloat16" and capability < BF16_MIN_CAPABILITY:
        refused = f"no bf16 on {gpu} (SM {capability}): vLLM would cast the bf16 weights to float16"
    elif demand.weights_dtype == "fp8" and capability < FP8_NATIVE_MIN_CAPABILITY:
        note = f"FP8 weight-only through Marlin on SM {capability}, slower than native FP8"
    return Candidate(demand.fit(gpu, count), prices.get(gpu), refused, note)


def weigh(demand: Demand, prices: Mapping[str, float]) -> list[Candidate]:
    """Every priced GPU type at every count, cheapest first."""
    options = [candidate(demand, gpu, count, prices) for gpu in KNOWN_GPUS if gpu in prices for count in GPU_COUNTS]
    return sorted(options, key=_order)


def _order(option: Candidate) -> tuple[float, int, float]:
    return (option.hourly, option.count, -option.fit.have_gb)


def choose(demand: Demand, prices: Mapping[str, float]) -> GpuChoice:
    """The cheapest usable option, its fallbacks and the reasoning; raises when nothing fits."""
    options = weigh(demand, prices)
    if not options:
        raise SizingError("fleet.toml: prices.per_hour: no GPU has a price, so there is nothing to weigh; add prices")
    usable = [option for option in options if option.usable]
    if not usable:
        raise SizingError(_nothing_fits(demand, options))
    winner = usable[0]
    fallbacks = tuple(option for option in usable if option.count == winner.count and option.gpu != winner.gpu)[
        :MAX_FALLBACKS
    ]
    weighed = _per_type(options)
    return GpuChoice(winner, fallbacks, weighed, _why(winner, weighed))


def override(demand: Demand, prices: Mapping[str, float], ref: str) -> GpuChoice:
    """``--gpu TYPE[:N]``: that option with its fit shown; raises when it cannot serve the model."""
    try:
        gpu, count = parse_gpu_ref(ref)
    except ValueError:
        raise SizingError(f"--gpu: {ref!r} is not TYPE or TYPE:COUNT") from None
    if gpu not in KNOWN_GPUS:
        raise SizingError(f"--gpu: unknown GPU {gpu!r}; known: {', '.join(KNOWN_GPUS)}")
    if count not in GPU_COUNTS:
        raise SizingError(f"--gpu: {ref!r} asks for {count} GPUs; use {', '.join(map(str, GPU_COUNTS))}")
    chosen = candidate(demand, gpu, count, prices)
    if chosen.refused:
        raise SizingError(f"--gpu {ref}: {chosen.refused}; pick another GPU or count")
    if not chosen.fit.fits:
        raise SizingError(
            f"--gpu {ref}: {chosen.fit.need_text()}, {chosen.fit.have_text()}: {chosen.fit.shortfall_gb:.1f} GB short; "
            "use a larger or additional GPU, a lower --max-model-len or --concurrency, or a quantized checkpoint"
        )
    others = [option for option in weigh(demand, prices) if option.usable]
    if others and (others[0].gpu, others[0].count) != (gpu, count):
        best = others[0]
        reason = (
            f"{chosen.ref} was chosen with --gpu; the cheapest fit would be {best.ref} at ${best.hourly:.2f}/h "
            f"({chosen.ref}: ${chosen.hourly:.2f}/h)"
        )
    else:
        reason = f"{chosen.ref} was chosen with --gpu (also the cheapest fit)"
    return GpuChoice(chosen, (), (chosen,), reason)


def _per_type(options: list[Candidate]) -> tuple[Candidate, ...]:
    """One row per GPU type: its cheapest usable count, else the attempt closest to fitting."""
    rows: dict[str, Candidate] = {}
    for gpu in dict.fromkeys(option.gpu for option in options):
        of_type = [option for option in options if option.gpu == gpu]
        usable = [option for option in of_type if option.usable]
        runnable = [option for option in of_type if option.refused is None]
        if usable:
            rows[gpu] = min(usable, key=_order)
        elif runnable:
            rows[gpu] = min(runnable, key=lambda option: option.fit.shortfall_gb)
        else:
            rows[gpu] = of_type[0]
    return tuple(sorted(rows.values(), key=_order))


def _why(winner: Candidate, weighed: tuple[Candidate, ...]) -> str:
    cheaper = [option for option in weighed if option.hourly < winner.hourly and not option.usable]
    why = (
        f"{winner.ref} wins: the cheapest option that fits, ${winner.hourly:.2f}/h per container "
        f"({winner.count} x ${winner.price_per_gpu or 0:.2f}), {winner.fit.spare_gb:.1f} GB spare"
    )
    if cheaper:
        why += "; cheaper options cannot serve it: " + "; ".join(f"{o.ref}: {o.verdict()}" for o in cheaper)
    same_price = [o for o in weighed if o.usable and o is not winner and o.hourly == winner.hourly]
    if same_price:
        why += f"; {', '.join(o.ref for o in same_price)} cost the same but use more GPUs or less memory"
    single = [o for o in weighed if o.usable and o.count == 1]
    if winner.count > 1 and single:
        # Tensor parallel rules out the GPU snapshot (spec lint): the cheapest one-GPU option keeps it.
        best = single[0]
        why += (
            f"; the cheapest single GPU, {best.ref} at ${best.hourly:.2f}/h, would keep the GPU snapshot "
            f"(faster cold starts): pass --gpu {best.ref} to prefer it"
        )
    return why


def _nothing_fits(demand: Demand, options: list[Candidate]) -> str:
    runnable = [option for option in options if option.refused is None]
    context = f"at --max-model-len {demand.max_model_len} and --concurrency {demand.concurrency}"
    if not runnable:
        reasons = "; ".join(sorted({f"{o.gpu}: {o.refused}" for o in options}))
        return f"--gpu: no GPU in fleet.toml's price table can run this checkpoint ({reasons})"
    closest = min(runnable, key=lambda option: option.fit.shortfall_gb)
    return (
        f"--gpu: fits no GPU in fleet.toml's price table {context}; the closest is {closest.ref}: "
        f"{closest.fit.need_text()}, {closest.fit.have_text()}: {closest.fit.shortfall_gb:.1f} GB short; lower "
        "--max-model-len or --concurrency, or use a quantized checkpoint"
    )
