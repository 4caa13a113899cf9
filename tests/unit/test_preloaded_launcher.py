"""A memory-only snapshot: the preloading launcher, and a restore reported as one (issue 12, #5).

Before a memory-only snapshot the GPU is not attached, so the serving container starts
``runtime/launcher.py``, which imports vLLM's heavy dependencies (real torch and
transformers here) and waits; after the restore it is released and runs the server.
The "server" here is the engine tests' stand-in speaking vLLM's /health, run by the
launcher exactly as it runs vLLM's module; real vLLM through the launcher is measured in
bench/launcher_preload.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from modelfleet.catalog import load_catalog
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.ports import free_port
from modelfleet.runtime.preloaded import launcher_entry, release, reset_control, wait_preloaded
from modelfleet.settings import FleetSettings
from modelfleet.targets.modal import serving
from modelfleet.targets.modal.bundle import ModelBundle, make_bundle
from modelfleet.targets.modal.serving import ServingRuntime
from tests.unit.test_engine_lifecycle import STAND_IN

REPO_ROOT = Path(__file__).resolve().parents[2]
PRELOAD_TIMEOUT = 300.0

pytestmark = pytest.mark.slow


def stand_in_engine(tmp_path: Path, control: Path) -> tuple[Engine, Path]:
    """An engine whose command is the launcher running the stand-in module (on PYTHONPATH)."""
    (tmp_path / "stand_in.py").write_text(STAND_IN)
    record = tmp_path / "calls.txt"
    port = free_port()
    entry = (*launcher_entry(control)[:-1], "stand_in")
    command = [*entry, str(port), str(record)]
    engine = Engine(command, env={"PYTHONPATH": str(tmp_path)}, port=port, log_path=tmp_path / "engine.log")
    return engine, record


@pytest.fixture
def launcher_engine(tmp_path: Path) -> Iterator[tuple[Engine, Path, Path]]:
    control = tmp_path / "control"
    reset_control(control)
    engine, record = stand_in_engine(tmp_path, control)
    yield engine, record, control
    engine.stop(grace=2)


def test_the_launcher_preloads_then_runs_the_server_only_when_released(
    launcher_engine: tuple[Engine, Path, Path],
) -> None:
    engine, record, control = launcher_engine
    engine.start()

    report = wait_preloaded(engine, control, timeout=PRELOAD_TIMEOUT)

    assert {"torch", "transformers"} <= set(report["modules"])  # type: ignore[arg-type]
    assert engine.returncode is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{engine.url}/health", timeout=2.0)  # imported, not serving: nothing listens yet
    release(control)
    engine.wait_healthy(timeout=60)
    assert record.read_text().splitlines()[0] == "GET /health"


@pytest.fixture
def memory_bundle() -> ModelBundle:
    settings = FleetSettings(root=REPO_ROOT)
    catalog = load_catalog(settings)
    bundle = make_bundle(catalog.require("smollm2-135m"), catalog, settings)
    snapshot = bundle.spec.snapshot.model_copy(update={"enabled": True, "gpu_snapshot": False})
    return bundle.model_copy(update={"spec": bundle.spec.model_copy(update={"snapshot": snapshot})})


class StandInRuntime(ServingRuntime):
    """The serving runtime with the stand-in in place of vLLM's argv; hooks and boot record unchanged."""

    def __init__(self, bundle: ModelBundle, workdir: Path) -> None:
        super().__init__(bundle)
        self.workdir = workdir
        self.edge_port, self.edge_log_path = free_port(), workdir / "edge.log"

    def _new_engine(self, entry: tuple[str, ...] | None = None) -> Engine:
        assert entry is not None, "a memory-only snapshot starts the engine through the launcher"
        control = Path(entry[2])
        engine, _ = stand_in_engine(self.workdir, control)
        return engine


@pytest.mark.parametrize(("after", "boot"), [("ta-restored", "restore"), ("ta-snapshotter", "cold")])
def test_a_memory_snapshot_boot_is_a_restore_in_a_new_task(
    memory_bundle: ModelBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: str, boot: str
) -> None:
    monkeypatch.setattr(serving, "LAUNCHER_CONTROL", tmp_path / "control")
    monkeypatch.setattr(serving, "PRELOAD_TIMEOUT", PRELOAD_TIMEOUT)
    runtime = StandInRuntime(memory_bundle, tmp_path)
    monkeypatch.setenv(serving.TASK_ID_ENV, "ta-snapshotter")
    try:
        runtime.prepare_snapshot()
        assert runtime.engine is not None and runtime.engine.returncode is None
        monkeypatch.setenv(serving.TASK_ID_ENV, after)  # Modal gives a restored container a new task id
        runtime.start()

        assert runtime.health_info()["boot"] == boot
        assert runtime.health_info()["snapshot"] == "memory"
        assert httpx.get(f"{runtime.engine.url}/health", timeout=5.0).status_code == 200
        # start() ends with the edge as its own process, listening, reporting the boot on /health.
        assert runtime.edge is not None and runtime.edge.running
        health = httpx.get(f"http://127.0.0.1:{runtime.edge_port}/health", timeout=5.0).json()
        assert (health["status"], health["boot"], health["snapshot"]) == ("ok", boot, "memory")
    finally:
        runtime.stop()


def test_the_launcher_is_run_by_path_with_the_servers_module() -> None:
    entry = launcher_entry(Path("/tmp/c"))

    assert entry[0] == sys.executable
    assert Path(entry[1]).name == "launcher.py" and Path(entry[1]).is_file()
    assert entry[2:] == ("/tmp/c", "vllm.entrypoints.openai.api_server")


class SleepingStandInRuntime(ServingRuntime):
    """GPU-snapshot hooks against the stand-in started as if with sleep mode."""

    def __init__(self, bundle: ModelBundle, workdir: Path, commit_cache: Callable[[], None]) -> None:
        super().__init__(bundle, commit_cache=commit_cache)
        self.workdir = workdir
        self.record = workdir / "calls.txt"
        self.edge_port, self.edge_log_path = free_port(), workdir / "edge.log"

    def _new_engine(self, entry: tuple[str, ...] | None = None) -> Engine:
        (self.workdir / "stand_in.py").write_text(STAND_IN)
        port = free_port()
        command = [
            sys.executable,
            str(self.workdir / "stand_in.py"),
            str(port),
            str(self.record),
            "--enable-sleep-mode",
        ]
        return Engine(command, env={}, port=port, log_path=self.workdir / "engine.log", served_name="m")


def test_the_gpu_snapshot_hook_commits_the_compile_cache_after_the_engine_sleeps(
    memory_bundle: ModelBundle, tmp_path: Path
) -> None:
    gpu_bundle = memory_bundle.model_copy(
        update={
            "spec": memory_bundle.spec.model_copy(
                update={"snapshot": memory_bundle.spec.snapshot.model_copy(update={"gpu_snapshot": True})}
            )
        }
    )
    calls_at_commit: list[list[str]] = []
    runtime = SleepingStandInRuntime(
        gpu_bundle, tmp_path, commit_cache=lambda: calls_at_commit.append(runtime.record.read_text().splitlines())
    )
    try:
        runtime.prepare_snapshot()

        (seen,) = calls_at_commit  # committed exactly once, before the hook returned (the snapshot follows)
        assert seen[-1] == "POST /sleep?level=1"
        runtime.start()
        assert runtime.health_info()["snapshot"] == "gpu"
        assert runtime.record.read_text().splitlines()[-1] == "POST /wake_up"
    finally:
        runtime.stop()


def test_the_launcher_keeps_its_own_folder_off_the_path_it_hands_to_vllm(tmp_path: Path) -> None:
    # multiprocessing passes sys.path to every process vLLM spawns; modelfleet/runtime has no place there.
    (tmp_path / "print_path.py").write_text("import json, sys; print('PATH=' + json.dumps(sys.path))\n")
    control = tmp_path / "control"
    reset_control(control)
    release(control)  # released before it starts: it runs the module as soon as its imports are done
    python, script, *_ = launcher_entry(control)
    done = subprocess.run(
        [python, script, str(control), "print_path"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=PRELOAD_TIMEOUT,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("PATH=")]
    path = [Path(p).resolve() for p in json.loads(line.removeprefix("PATH=")) if p]
    assert Path(script).resolve().parent not in path
    assert tmp_path.resolve() in path
