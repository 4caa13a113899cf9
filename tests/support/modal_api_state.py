"""In-memory state behind the loopback Modal API recorder.

Why a separate module: the gRPC handlers (``modal_api_handlers``) and the public recorder
(``modal_api``) both need the same plain data model -- apps with their deployment history,
dicts, volumes, secrets, uploaded mount files -- and keeping it free of grpclib makes the
records easy to snapshot and hand to tests without any locking surprises.
"""

from __future__ import annotations

import copy
import secrets
import string
import time
from dataclasses import dataclass, field

from modal_proto import api_pb2

_ALPHABET = string.ascii_letters + string.digits


def new_object_id(prefix: str) -> str:
    """Return an id shaped like Modal's: ``<prefix>-`` plus 22 alphanumerics.

    Why: the client validates some ids with regexes (``^ap-[a-zA-Z0-9]{22}$`` in
    ``modal app`` commands) and dispatches hydration on the prefix, so fake ids must look real.
    """
    return f"{prefix}-" + "".join(secrets.choice(_ALPHABET) for _ in range(22))


@dataclass(frozen=True)
class Deployment:
    """One entry of an app's deployment history (what ``modal app history`` shows)."""

    version: int
    tag: str
    commit_hash: str
    deployed_at: float
    client_version: str
    rollback_version: int = 0  # non-zero when this entry was made by ``modal app rollback``
    function_ids: tuple[tuple[str, str], ...] = ()
    class_ids: tuple[tuple[str, str], ...] = ()
    # What this version serves. Function and class ids stay the same across a redeploy (the
    # client re-uses them from AppGetLayout), so the definition must be kept per version: a
    # rollback serves the older definition under the same ids.
    functions: dict[str, tuple[api_pb2.FunctionHandleMetadata, api_pb2.FunctionData]] = field(
        default_factory=dict, compare=False
    )
    classes: dict[str, api_pb2.ClassHandleMetadata] = field(default_factory=dict, compare=False)


@dataclass
class AppRecord:
    """A Modal app as the server sees it; deployed apps have a name and a history."""

    app_id: str
    description: str
    environment: str
    state: int
    created_at: float
    name: str = ""
    stopped_at: float = 0.0
    deployments: list[Deployment] = field(default_factory=list)
    function_ids: dict[str, str] = field(default_factory=dict)
    class_ids: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> int:
        """Current (latest) deployed version, 0 when never deployed."""
        return self.deployments[-1].version if self.deployments else 0

    @property
    def state_name(self) -> str:
        """Readable app state, e.g. ``APP_STATE_DEPLOYED``."""
        return str(api_pb2.AppState.Name(self.state))  # type: ignore[arg-type]

    def lifecycle(self) -> api_pb2.AppLifecycle:
        """The ``AppLifecycle`` message ``modal app`` commands inspect."""
        lc = api_pb2.AppLifecycle(
            app_state=self.state,  # type: ignore[arg-type]
            created_at=self.created_at,
            created_by="test-user",
            version=self.version,
        )
        if self.deployments:
            lc.deployed_at = self.deployments[-1].deployed_at
            lc.deployed_by = "test-user"
        if self.stopped_at:
            lc.stopped_at = self.stopped_at
            lc.stopped_by = "test-user"
        return lc

    def snapshot(self) -> AppRecord:
        """Deep copy, so callers in other threads never see a half-updated record."""
        return copy.deepcopy(self)


@dataclass
class ContainerRecord:
    """A (pretend) running container of an app, as ``modal container list`` shows it."""

    task_id: str
    app_id: str
    started_at: float
    finished_at: float = 0.0
    # The app version whose definition the container runs: after a ``rolling`` rollback the
    # old version's containers keep serving until they drain, so tests must tell them apart.
    version: int = 0


@dataclass
class ModalState:
    """Everything the fake control plane remembers while the recorder lives."""

    environment: str = "main"
    image_builder_version: str = "2025.06"
    workspace: str = "modelfleet-test"
    # Modal never creates a named Secret or Volume on lookup unless asked (create_if_missing).
    strict_lookups: bool = True
    apps: dict[str, AppRecord] = field(default_factory=dict)
    deployed_names: dict[tuple[str, str], str] = field(default_factory=dict)
    function_metadata: dict[str, api_pb2.FunctionHandleMetadata] = field(default_factory=dict)
    function_data: dict[str, api_pb2.FunctionData] = field(default_factory=dict)
    class_metadata: dict[str, api_pb2.ClassHandleMetadata] = field(default_factory=dict)
    volumes: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], tuple[str, dict[str, str]]] = field(default_factory=dict)
    dict_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    dicts: dict[str, dict[bytes, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    mount_files: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    containers: dict[str, ContainerRecord] = field(default_factory=dict)
    # Failure injection: ContainerStop answers FAILED_PRECONDITION with this message when set.
    container_stop_error: str = ""

    def env_name(self, requested: str) -> str:
        """The environment a request targets: empty means the default one."""
        return requested or self.environment

    def new_app(self, description: str, environment: str, state: int) -> AppRecord:
        """Register a fresh app (``AppCreate``)."""
        app = AppRecord(
            app_id=new_object_id("ap"),
            description=description,
            environment=self.env_name(environment),
            state=state,
            created_at=time.time(),
        )
        self.apps[app.app_id] = app
        return app

    def app_by_name(self, name: str, environment: str) -> AppRecord | None:
        """The app currently (or most recently) deployed under ``name``."""
        app_id = self.deployed_names.get((self.env_name(environment), name))
        return self.apps.get(app_id) if app_id else None

    def web_url(self, app_name: str, label: str) -> str:
        """A realistic ``*.modal.run`` URL for a web endpoint."""
        slug = f"{app_name}-{label}".lower().replace("_", "-").replace(".", "-")
        return f"https://{self.workspace}--{slug}.modal.run"

    def server_url(self, app_name: str, label: str, region: str) -> str:
        """A realistic Server URL, ``*.<routing region>.modal.direct`` (modal-examples
        ``06_gpu_and_ml/llm-serving/vllm_low_latency.py`` prints one of these)."""
        slug = f"{app_name}-{label}".lower().replace("_", "-").replace(".", "-")
        return f"https://{self.workspace}--{slug}.{region}.modal.direct"

    def app_url(self, app: AppRecord) -> str:
        """Dashboard URL of a deployed app, as ``AppPublish`` answers it."""
        return f"https://modal.com/apps/{self.workspace}/{app.environment}/deployed/{app.name or app.app_id}"
