"""Contract tests: the REAL modal client (pinned modal==1.6.4) against ModalApiRecorder.

Why: every other test that relies on the recorder assumes it speaks enough of Modal's API for
``modal deploy``, ``modal app rollback/history/list/stop``, ``app.deploy()`` and ``modal.Dict``
to succeed, and that it faithfully shows what the client sends. These tests pin that down by
running the client as a subprocess (exactly as CI would) and inspecting the recorded requests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpclib import Status
from modal_proto import api_pb2

from tests.support.modal_api import ModalApiRecorder

APP_SOURCE = textwrap.dedent(
    """
    import modal

    app = modal.App("contract-app")
    image = modal.Image.debian_slim().pip_install("requests==2.32.3")
    weights = modal.Volume.from_name("w", create_if_missing=True, version=2)


    @app.cls(
        image=image,
        gpu=["H100", "A100-80GB"],
        min_containers=0,
        max_containers=3,
        scaledown_window=120,
        enable_memory_snapshot=True,
        experimental_options={"enable_gpu_snapshot": True},
        volumes={"/w": weights.with_mount_options(read_only=True)},
        secrets=[modal.Secret.from_name("huggingface-secret")],
    )
    @modal.concurrent(max_inputs=32, target_inputs=16)
    class Server:
        @modal.enter(snap=True)
        def start(self) -> None:
            pass

        @modal.enter(snap=False)
        def wake(self) -> None:
            pass

        @modal.web_server(8000, startup_timeout=600, requires_proxy_auth=True)
        def serve(self) -> None:
            pass
    """
)

SERVER_SOURCE = textwrap.dedent(
    """
    import modal

    app = modal.App("contract-server")


    @app.server(port=8000, gpu="L40S", min_containers=1, target_concurrency=8, scaledown_window=300)
    class Srv:
        @modal.enter()
        def start(self) -> None:
            pass
    """
)

TIMEOUT_S = 90


@pytest.fixture
def api() -> Iterator[ModalApiRecorder]:
    """A fresh recorder per test, so call logs and app histories never leak between tests.

    It holds the Secret APP_SOURCE names, as the workspace would (lookups are strict)."""
    with ModalApiRecorder() as recorder:
        recorder.create_secret("huggingface-secret", {"HF_TOKEN": "hf_placeholder"})
        yield recorder


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    path = tmp_path / "contract_app.py"
    path.write_text(APP_SOURCE)
    return path


def modal_cli(api: ModalApiRecorder, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m modal ARGS`` against the recorder, the way CI runs the CLI."""
    return subprocess.run(
        [sys.executable, "-m", "modal", *args],
        env=api.subprocess_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def run_python(api: ModalApiRecorder, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a fresh interpreter pointed at the recorder."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=api.subprocess_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def deploy(api: ModalApiRecorder, path: Path, name: str, tag: str) -> subprocess.CompletedProcess[str]:
    return modal_cli(api, "deploy", str(path), "--name", name, "--tag", tag, cwd=path.parent)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_deploy_sends_gpu_autoscaler_snapshot_volume_and_auth_settings(api: ModalApiRecorder, app_file: Path) -> None:
    out = ok(deploy(api, app_file, "fleet-a", "t1"))

    assert "App deployed" in out
    assert api.unimplemented == []
    names = api.call_names()
    expected_order = [
        "AppGetByDeploymentName",
        "AppCreate",
        "FunctionPrecreate",
        "FunctionCreate",
        "ClassCreate",
        "AppPublish",
    ]
    positions = [names.index(n) for n in expected_order]
    assert positions == sorted(positions), names
    for rpc in (
        "EnvironmentGetOrCreate",
        "ImageGetOrCreate",
        "ImageJoinStreaming",
        "VolumeGetOrCreate",
        "SecretGetOrCreate",
        "MountGetOrCreate",
        "MountPutFile",
    ):
        assert rpc in names

    (create,) = api.function_creates()
    fd = api.function_definition(create)
    assert isinstance(fd, api_pb2.FunctionData)
    assert [
        (r.rank, r.function.resources.gpu_config.gpu_type, r.function.resources.gpu_config.count)
        for r in fd.ranked_functions
    ] == [(0, "H100", 1), (1, "A100-80GB", 1)]
    settings = fd.autoscaler_settings
    assert (settings.min_containers, settings.max_containers, settings.scaledown_window) == (0, 3, 120)
    assert dict(fd.experimental_options) == {"enable_gpu_snapshot": "True"}
    fn = fd.ranked_functions[0].function
    assert fn.checkpointing_enabled is True
    assert (fn.max_concurrent_inputs, fn.target_concurrent_inputs) == (32, 16)
    (mount,) = fn.volume_mounts
    assert (mount.mount_path, mount.read_only) == ("/w", True)
    hook = fd.method_definitions["serve"].webhook_config
    assert hook.type == api_pb2.WEBHOOK_TYPE_WEB_SERVER
    assert (hook.web_server_port, hook.web_server_startup_timeout, hook.requires_proxy_auth) == (8000, 600.0, True)

    (volume_req,) = api.requests("VolumeGetOrCreate")
    assert volume_req.version == api_pb2.VOLUME_FS_VERSION_V2
    assert api.requests("SecretGetOrCreate")[0].deployment_name == "huggingface-secret"
    assert any(content == APP_SOURCE.encode() for content in api.uploaded_files().values())

    (publish,) = api.requests("AppPublish")
    assert (publish.name, publish.deployment_tag) == ("fleet-a", "t1")
    app = api.apps()["fleet-a"]
    assert app.app_id.startswith("ap-") and len(app.app_id) == 25
    assert app.state == api_pb2.APP_STATE_DEPLOYED
    assert [(d.version, d.tag) for d in app.deployments] == [(1, "t1")]
    assert create.existing_function_id.startswith("fu-")
    assert set(app.function_ids.values()) == {create.existing_function_id}
    assert all(cid.startswith("cs-") for cid in app.class_ids.values())


def test_deployed_objects_can_be_looked_up_by_name(api: ModalApiRecorder, app_file: Path) -> None:
    ok(deploy(api, app_file, "fleet-look", "t1"))

    out = run_python(
        api,
        """
        import modal
        Server = modal.Cls.from_name("fleet-look", "Server")
        print(Server().serve.get_web_url())
        print(Server._get_class_service_function().info().gpus)
        """,
        cwd=app_file.parent,
    )

    lines = ok(out).strip().splitlines()
    assert lines[-2] == "https://modelfleet-test--fleet-look-server-serve.modal.run"
    assert lines[-1] == "[('H100', 1), ('A100-80GB', 1)]"
    assert {"ClassGet", "FunctionGet"} <= set(api.call_names())
    assert api.unimplemented == []


def test_injected_function_create_failure_fails_the_deploy(api: ModalApiRecorder, app_file: Path) -> None:
    api.fail_function_create_for("broken", message="GPU type not available in this workspace")

    proc = deploy(api, app_file, "fleet-broken-1", "t1")

    assert proc.returncode != 0
    assert "GPU type not available in this workspace" in proc.stdout + proc.stderr
    assert "AppPublish" not in api.call_names()
    assert "AppClientDisconnect" in api.call_names()
    assert "fleet-broken-1" not in api.apps()
    # Other apps are unaffected.
    ok(deploy(api, app_file, "fleet-fine", "t1"))


def test_non_retryable_injected_failure_is_sent_once(api: ModalApiRecorder, app_file: Path) -> None:
    api.fail_function_create_for("bad", Status.INVALID_ARGUMENT, "unknown GPU type 'H900'")

    proc = deploy(api, app_file, "fleet-bad", "t1")

    assert proc.returncode != 0
    assert "unknown GPU type 'H900'" in proc.stdout + proc.stderr
    assert len(api.function_creates()) == 1


def test_redeploy_history_rollback_list_and_stop(api: ModalApiRecorder, app_file: Path) -> None:
    ok(deploy(api, app_file, "fleet-b", "commit-1"))
    first = api.apps()["fleet-b"]
    ok(deploy(api, app_file, "fleet-b", "commit-2"))

    second = api.apps()["fleet-b"]
    assert second.app_id == first.app_id
    assert [(d.version, d.tag) for d in second.deployments] == [(1, "commit-1"), (2, "commit-2")]
    assert "AppGetLayout" in api.call_names()
    create_1, create_2 = api.function_creates()
    assert create_2.existing_function_id == create_1.existing_function_id

    history = json.loads(ok(modal_cli(api, "app", "history", "fleet-b", "--json")))
    assert [(row["version"], row["tag"]) for row in history] == [("v2", "commit-2"), ("v1", "commit-1")]

    out = ok(modal_cli(api, "app", "rollback", "fleet-b", "v1"))
    assert "rollback successful" in out
    (rollback,) = api.requests("AppRollback")
    assert (rollback.app_id, rollback.version) == (first.app_id, 1)
    after = api.apps()["fleet-b"]
    assert (after.version, after.deployments[-1].rollback_version, after.deployments[-1].tag) == (3, 1, "commit-1")

    ok(modal_cli(api, "app", "rollback", "fleet-b"))  # no version: the previous one (v2)
    assert api.apps()["fleet-b"].deployments[-1].rollback_version == 2

    listed = json.loads(ok(modal_cli(api, "app", "list", "--json")))
    row = next(r for r in listed if r["app_id"] == first.app_id)
    assert (row["description"], row["state"]) == ("fleet-b", "deployed")

    ok(modal_cli(api, "app", "stop", "fleet-b", "--yes"))
    assert api.apps()["fleet-b"].state == api_pb2.APP_STATE_STOPPED
    assert api.requests("AppStop")[0].app_id == first.app_id
    assert api.unimplemented == []


def test_python_app_deploy(api: ModalApiRecorder, app_file: Path) -> None:
    ok(
        run_python(
            api,
            """
        import contract_app
        contract_app.app.deploy(name="fleet-py", tag="py-1")
        """,
            cwd=app_file.parent,
        )
    )

    app = api.apps()["fleet-py"]
    assert [(d.version, d.tag) for d in app.deployments] == [(1, "py-1")]
    assert len(api.function_creates()) == 1


def test_dict_round_trip_across_processes(api: ModalApiRecorder, tmp_path: Path) -> None:
    ok(
        run_python(
            api,
            """
        import modal
        d = modal.Dict.from_name("fleet-state", create_if_missing=True)
        d["fleet-a"] = {"version": 2, "tag": "commit-2"}
        d.put("counter", 1)
        """,
            cwd=tmp_path,
        )
    )

    out = ok(
        run_python(
            api,
            """
        import json, modal
        d = modal.Dict.from_name("fleet-state")
        print(json.dumps({"a": d.get("fleet-a"), "n": d["counter"], "missing": d.get("nope", "dflt"),
                          "len": d.len(), "keys": sorted(d.keys())}))
        """,
            cwd=tmp_path,
        )
    )

    assert json.loads(out.strip().splitlines()[-1]) == {
        "a": {"version": 2, "tag": "commit-2"},
        "n": 1,
        "missing": "dflt",
        "len": 2,
        "keys": ["counter", "fleet-a"],
    }
    assert len(api.dict_contents("fleet-state")) == 2
    assert api.unimplemented == []


def test_dict_lookup_without_create_is_not_found(api: ModalApiRecorder, tmp_path: Path) -> None:
    proc = run_python(api, 'import modal; modal.Dict.from_name("absent").hydrate()', cwd=tmp_path)

    assert proc.returncode != 0
    assert "NotFoundError" in proc.stderr


def test_app_server_decorator_deploys(api: ModalApiRecorder, tmp_path: Path) -> None:
    path = tmp_path / "contract_server.py"
    path.write_text(SERVER_SOURCE)

    ok(deploy(api, path, "fleet-srv", "s1"))

    (create,) = api.function_creates()
    fn = create.function
    assert fn.is_server is True
    assert fn.resources.gpu_config.gpu_type == "L40S"
    assert fn.autoscaler_settings.min_containers == 1
    assert fn.http_config.port == 8000 and fn.http_config.unauthenticated is False
    assert api.unimplemented == []


def test_server_going_away_mid_deploy_fails_it(api: ModalApiRecorder, app_file: Path) -> None:
    api.go_away(after_calls=6)

    proc = deploy(api, app_file, "fleet-gone", "t1")

    assert proc.returncode != 0
    assert "Connect call failed" in proc.stderr or "Connection" in proc.stderr
    assert api.stopped
    assert api.call_names()[:5] == [
        "AppGetByDeploymentName",
        "AppCreate",
        "EnvironmentGetOrCreate",
        "FunctionPrecreate",
        "AppHeartbeat",
    ]
    assert "FunctionCreate" not in api.call_names()
    assert "AppPublish" not in api.call_names()


def test_unimplemented_rpc_is_recorded(api: ModalApiRecorder, tmp_path: Path) -> None:
    proc = run_python(api, 'import modal; modal.Queue.from_name("q", create_if_missing=True).hydrate()', cwd=tmp_path)

    assert proc.returncode != 0
    assert "not implemented" in proc.stderr
    assert [name for name, _ in api.unimplemented] == ["QueueGetOrCreate"]
