"""Seeding and verification: the first seed of the demo model against a second one, and how fast
``fleet verify`` re-hashes, beside the disk's own sequential read speed.

A second ``fleet seed`` of a seeded model must download nothing and finish in seconds (it
only re-hashes the files against the manifest), so CI can seed on every merge. Verification
should run at disk speed: it is measured on the demo model (one 269 MB shard: bound by one
core's sha256, since sha256 is sequential within a file) and on a generated checkpoint of
several GB in many shards (written to a temporary folder on the same disk, deleted after),
each warm (in the page cache) and cold (evicted first, ``bench/disk.py``), against two
references measured in the same run: the disk reading the same files without hashing (the
limit), and the single-threaded verification this replaced (the baseline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.disk import evict, read_speed, serial_sha256, sha256_capacity, write_checkpoint
from bench.harness import measure, save, summary
from modelfleet.catalog import load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.volumes import location, seed, verify_model
from modelfleet.volumes.hashing import hashing_threads
from modelfleet.volumes.manifest import build_entries, read_manifest, verify, write_manifest

ROOT = Path(__file__).resolve().parents[1]


def rates(files: list[Path], verify_all: Callable[[], bool], repeats: int, *, cold: bool) -> dict[str, dict[str, Any]]:
    """GB/s of the disk alone, the old serial hashing and the parallel verification, alternating."""
    size_gb = sum(f.stat().st_size for f in files) / 1e9
    samples: dict[str, list[float]] = {"disk_read": [], "serial_sha256_before": [], "verify": []}

    def timed(action: Callable[[], object]) -> float:
        if cold:
            evict(files)
        (seconds,) = measure(action, 1)
        return size_gb / seconds

    for _ in range(repeats):
        samples["disk_read"].append(read_speed(files, cold=cold))
        samples["serial_sha256_before"].append(timed(lambda: serial_sha256(files)))
        samples["verify"].append(timed(lambda: _checked(verify_all())))
    return {name: summary(values) for name, values in samples.items()}


def _checked(ok: bool) -> None:
    assert ok, "verification failed on an untouched checkpoint"


def demo_model(model_name: str, repeats: int, scratch: Path) -> dict[str, Any]:
    """First and second seed of the demo model, then its verification warm and cold."""
    model = load_catalog(FleetSettings()).require(model_name)
    first = measure(lambda: seed(model, scratch), 1)
    result = seed(model, scratch)
    assert result.skipped, "the second seed downloaded again"
    second = summary(measure(lambda: seed(model, scratch), repeats))
    where = location(model, scratch)
    manifest = read_manifest(where.manifest)
    assert manifest is not None
    files = [(where.snapshot / e.path).resolve() for e in manifest.entries]
    verify_once = lambda: verify_model(model, scratch).ok  # noqa: E731
    return {
        "model": model_name,
        "bytes": result.bytes,
        "files": result.files,
        "largest_file_bytes": max(f.stat().st_size for f in files),
        "first_seed_seconds": first[0],
        "second_seed_seconds": second,
        "speedup_second_vs_first": first[0] / second["median"],
        "warm_gb_per_s": rates(files, verify_once, repeats, cold=False),
        "cold_gb_per_s": rates(files, verify_once, repeats, cold=True),
    }


def generated_checkpoint(gigabytes: float, shards: int, repeats: int, scratch: Path) -> dict[str, Any]:
    """A checkpoint of ``shards`` files written for the run: manifest, then verification warm and cold."""
    snapshot = scratch / "checkpoint"
    files = write_checkpoint(snapshot, shards=shards, shard_bytes=int(gigabytes * 1e9 / shards))
    manifest = scratch / "manifest.json"
    (build_seconds,) = measure(lambda: write_manifest(manifest, build_entries(snapshot), source="bench"), 1)
    verify_once = lambda: verify(snapshot, manifest).ok  # noqa: E731
    try:
        return {
            "bytes": sum(f.stat().st_size for f in files),
            "files": len(files),
            "manifest_build_seconds": build_seconds,
            "warm_gb_per_s": rates(files, verify_once, repeats, cold=False),
            "cold_gb_per_s": rates(files, verify_once, repeats, cold=True),
        }
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)


def main() -> None:
    """Run and save the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint-gb", type=float, default=4.0, help="size of the generated checkpoint")
    parser.add_argument("--shards", type=int, default=16, help="files of the generated checkpoint")
    args = parser.parse_args()
    os.environ.setdefault("FLEET_ROOT", str(ROOT))
    base = ROOT / ".fleet" if (ROOT / ".fleet").is_dir() else None
    free_gb = shutil.disk_usage(base or tempfile.gettempdir()).free / 1e9
    if free_gb < 2 * args.checkpoint_gb:
        raise SystemExit(f"--checkpoint-gb {args.checkpoint_gb}: only {free_gb:.0f} GB free; pass a smaller size")
    capacity = (sha256_capacity(1), sha256_capacity(hashing_threads()))
    with tempfile.TemporaryDirectory(dir=base) as scratch:
        demo = demo_model(args.model, args.repeats, Path(scratch) / "volume")
    with tempfile.TemporaryDirectory(dir=base) as scratch:
        checkpoint = generated_checkpoint(args.checkpoint_gb, args.shards, args.repeats, Path(scratch))
    data = {
        **{k: v for k, v in demo.items() if not k.endswith("gb_per_s")},
        "verify_gb_per_s": demo["warm_gb_per_s"]["verify"]["median"],
        "demo_model": {k: v for k, v in demo.items() if k.endswith("gb_per_s")},
        "generated_checkpoint": checkpoint,
        "hashing_threads": hashing_threads(),
        "sha256_in_memory_gb_per_s": {
            "1_thread": capacity[0],
            f"{hashing_threads()}_threads": capacity[1],
        },
        "goal_verify_gb_per_s_at_least": 1.0,
        "cold_means": "the files' pages evicted from this VM's page cache (fsync + posix_fadvise DONTNEED); "
        "the hypervisor may still cache",
        "command": "modelfleet.volumes.seed(model, fresh_root) once, then again x repeats; then, warm and cold, "
        "alternating x repeats: disk read of the files (16 MiB blocks, no hash), the old serial sha256 "
        "(read 8 MiB), verify (parallel files, read-ahead); the same on a generated checkpoint",
    }
    bars = {}
    for label, part in (("demo", data["demo_model"]), ("ckpt", checkpoint)):
        for temperature in ("warm", "cold"):
            for name, short in (("disk_read", "disk"), ("serial_sha256_before", "before"), ("verify", "verify")):
                stats = part[f"{temperature}_gb_per_s"][name]
                bars[f"{label} {temperature}\n{short}"] = (stats["median"], stats["min"], stats["max"])
    path = save(
        "seeding",
        data,
        bars,
        ylabel="GB/s",
        title=f"verification vs disk read: {args.model} ({demo['bytes'] / 1e9:.2f} GB, 1 big shard) "
        f"and {checkpoint['bytes'] / 1e9:.1f} GB in {checkpoint['files']} files",
    )
    for label, part in (("demo", data["demo_model"]), ("checkpoint", checkpoint)):
        for temperature in ("warm", "cold"):
            r = part[f"{temperature}_gb_per_s"]
            print(
                f"{label} {temperature}: disk {r['disk_read']['median']:.2f} GB/s, "
                f"before {r['serial_sha256_before']['median']:.2f}, verify {r['verify']['median']:.2f}"
            )
    print(f"sha256 in memory: {capacity[0]:.2f} GB/s on 1 thread, {capacity[1]:.2f} on {hashing_threads()}")
    print(
        f"first seed {demo['first_seed_seconds']:.1f}s, second {demo['second_seed_seconds']['median']:.2f}s -> {path}"
    )


if __name__ == "__main__":
    main()
