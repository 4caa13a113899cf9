"""Modal's web front for deployed endpoints, on loopback: proxy auth, cold boots, the 150 s limit.

Why: the loopback recorder proves the real client accepts a deploy; what a deployed
endpoint then answers is Modal's web front. The post-deploy steps depend on four things
it does, so this front does them (sources in the comments where each is done):

- **One URL per endpoint** whose root is the endpoint's root. Attached to a recorder,
  the front hands out ``http://127.0.0.1:<port>`` as each web endpoint's URL (the
  recorder's ``state.web_url``), so ``get_web_url()`` and ``modal deploy`` print it.
- **Proxy auth** for endpoints deployed with ``requires_proxy_auth``: ``Modal-Key`` +
  ``Modal-Secret``, or ``Authorization: Bearer wk-....ws-...``, checked against the
  tokens made through the recorder's token RPCs, within the token's environments;
  401 otherwise (guide "Proxy Auth Tokens"; modal/cli/workspace.py).
- **Containers that boot on demand**: a request to an app without a running container
  starts one and waits for it (``boot_seconds``; ``restore_seconds`` for a boot from a
  snapshot). Each is registered as the recorder's container, so ``modal container
  list/stop`` see and stop it; a stopped container's edge is shut down.
- **The request limit**: a request without an answer after ``request_limit`` seconds
  (150 on Modal) gets ``303 See Other`` with ``Location`` = its URL plus
  ``__modal_function_call_id=fc-...``; a GET of that waits again up to the limit for the
  same request (no new one) and serves its result, or answers 303 again (guide
  "Request timeouts", https://modal.com/docs/guide/webhook-timeouts). The guide says
  nothing about a response that has begun streaming before the limit; here the limit
  applies until the response headers, and a started stream runs to its end.

**Modal Servers** (``@app.server``; the definition has ``is_server`` and ``http_config``)
are served at the URL ``modal.Server.get_url()`` reads (the handle's flash URL), with
proxy auth unless ``http_config.unauthenticated``. Unlike the classic endpoint, a
request that arrives while no container of the live version runs is answered ``503``
at once and only starts a boot ("when no replicas are available, Modal will respond
with the 503 Service Unavailable status": modal-examples
``06_gpu_and_ml/llm-serving/vllm_low_latency.py``); a request above the definition's
``max_concurrency`` per container gets ``429`` (``App.server`` docstring, modal 1.6.4).
The 150 s limit is documented for web endpoints only, so a Server's requests have none.

Snapshots follow the deployed definition (FunctionCreate's ``checkpointing_enabled``):
the snapshot is taken during a cold start after a deploy (``snapshot_after`` cold
starts, "usually fewer than five" on Modal), and later cold starts of that version
restore; a new version (a deploy, a rollback) starts without one.

What runs in a "container" is the project's real edge (``build_edge``, configured as
``targets/modal/serving.py`` does: ``modal-proxy`` auth, or ``public``; boot info on
``/health``) in front of a real upstream -- the e2e session's vLLM.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from modal_proto import api_pb2
from yarl import URL

from modelfleet.runtime.edge import EdgeConfig
from modelfleet.runtime.tokens import parse_credentials

from .modal_api_state import new_object_id
from .modal_web_front_calls import Boot, Endpoint, FrontSettings, HeldCall, Live, chunks
from .modal_web_front_containers import FrontContainer, start_edge
from .modal_web_front_defs import live_definitions, served_at

if TYPE_CHECKING:
    from .modal_api import ModalApiRecorder

CALL_PARAM = "__modal_function_call_id"
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"}
# Modal's own wording for a request without credentials (guide "Proxy Auth Tokens").
MISSING_CREDENTIALS = "modal-http: missing credentials for proxy authorization"
INVALID_CREDENTIALS = "modal-http: invalid credentials for proxy authorization"
NO_REPLICAS = "modal-http: no live replicas for this server; retry shortly"
TOO_MANY = "modal-http: server at max_concurrency"


class ModalWebFront:
    """Serve every web endpoint the recorder deploys; see the module docstring for what it enforces."""

    def __init__(self, api: ModalApiRecorder, settings: FrontSettings) -> None:
        self.api = api
        self.settings = settings
        self.endpoints: dict[str, Endpoint] = {}
        self.boots: list[Boot] = []
        self.redirects: list[str] = []  # URLs (without query) answered with 303
        self.refused: list[int] = []
        self._sockets: dict[str, socket.socket] = {}
        self._containers: dict[str, FrontContainer] = {}
        self._boot_locks: dict[str, asyncio.Lock] = {}
        self._cold_boots: dict[tuple[str, int], int] = {}
        self._snapshots: set[tuple[str, int]] = set()
        self._calls: dict[str, HeldCall] = {}
        self._in_flight: dict[str, int] = {}  # a Server's requests being answered, by app id
        self._booting: dict[str, asyncio.Task[FrontContainer]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="modal-web-front", daemon=True)
        self._runners: list[web.AppRunner] = []
        self._session: aiohttp.ClientSession | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._lock = threading.Lock()

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> ModalWebFront:
        """Start the loop and hand the recorder this front's URLs for web endpoints."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._setup(), self._loop).result(10)
        # The recorder names a web endpoint's (or a Server's) URL when FunctionCreate arrives: give it ours.
        setattr(self.api.state, "web_url", self.url_for)  # noqa: B010  (replaces a method on one instance)
        setattr(self.api.state, "server_url", lambda app, label, region: self.url_for(app, label))  # noqa: B010
        return self

    async def _setup(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        self._reaper = asyncio.create_task(self._reap())

    def stop(self) -> None:
        """Stop every container's edge and the front."""
        asyncio.run_coroutine_threadsafe(self._teardown(), self._loop).result(30)
        for container in list(self._containers.values()):
            container.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _teardown(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for runner in self._runners:
            await runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def __enter__(self) -> ModalWebFront:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- URLs ----------------------------------------------------------------------------
    def url_for(self, app_name: str, label: str) -> str:
        """The endpoint's URL: its own 127.0.0.1 port, bound now and served from the front's loop."""
        with self._lock:
            for endpoint in self.endpoints.values():
                if (endpoint.app_name, endpoint.label) == (app_name, label):
                    return endpoint.url
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            endpoint = Endpoint(app_name, label, url)
            self.endpoints[url] = endpoint
            self._sockets[url] = sock
        # Called on the recorder's loop thread, holding its lock: schedule, never wait.
        asyncio.run_coroutine_threadsafe(self._serve(endpoint, sock), self._loop)
        return url

    async def _serve(self, endpoint: Endpoint, sock: socket.socket) -> None:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(endpoint, request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runners.append(runner)

    # ---- requests ------------------------------------------------------------------------
    async def _handle(self, endpoint: Endpoint, request: web.Request) -> web.StreamResponse:
        found = self._deployed(endpoint)
        if found is None:
            return web.Response(status=404, text="modal-http: invalid function call (app not deployed)")
        environment, live = found
        if live.requires_auth:
            refusal = self._refusal(request, environment)
            if refusal is not None:
                self.refused.append(401)
                return web.Response(status=401, text=refusal)
        if live.served.server:
            return await self._serve_server(endpoint, live, request)
        call_id = request.query.get(CALL_PARAM)
        if call_id is not None:
            call = self._calls.get(call_id)
            if call is None:
                return web.Response(status=404, text=f"modal-http: function call {call_id} not found")
        else:
            call = HeldCall(new_object_id("fc"))
            self._calls[call.call_id] = call
            body = await request.read()
            call.task = asyncio.create_task(self._run(call, endpoint, live, request, body))
        try:
            await asyncio.wait_for(call.started.wait(), self.settings.request_limit)
        except TimeoutError:
            return self._see_other(request, call)
        return await self._relay(call, request)

    async def _serve_server(self, endpoint: Endpoint, live: Live, request: web.Request) -> web.StreamResponse:
        """A Modal Server: straight to a live container, 503 (and a boot) when none runs, 429 above the cap."""
        running = self._containers.get(live.app_id)
        if running is None or not self._alive(running) or running.version != live.version:
            if live.app_id not in self._booting or self._booting[live.app_id].done():
                self._booting[live.app_id] = asyncio.create_task(self._container(endpoint, live))
            self.refused.append(503)
            return web.Response(status=503, text=NO_REPLICAS)
        cap = live.served.max_concurrency
        if cap and self._in_flight.get(live.app_id, 0) >= cap:
            self.refused.append(429)
            return web.Response(status=429, text=TOO_MANY)
        self._in_flight[live.app_id] = self._in_flight.get(live.app_id, 0) + 1
        try:
            call = HeldCall(new_object_id("fc"))
            body = await request.read()
            call.task = asyncio.create_task(self._run(call, endpoint, live, request, body))
            await call.started.wait()
            return await self._relay(call, request)
        finally:
            self._in_flight[live.app_id] -= 1

    def _see_other(self, request: web.Request, call: HeldCall) -> web.Response:
        """303 to the result URL: this URL plus the call id (Modal guide "Request timeouts")."""
        location = request.url.without_query_params(CALL_PARAM).update_query({CALL_PARAM: call.call_id})
        self.redirects.append(f"{request.url.origin()}{request.path}")
        return web.Response(status=303, headers={"Location": str(location)})

    def _refusal(self, request: web.Request, environment: str) -> str | None:
        credentials = parse_credentials(request.headers)
        if credentials is None:
            return MISSING_CREDENTIALS
        with self.api._lock:
            allowed = self.api.token_allows(*credentials, environment)
        return None if allowed else INVALID_CREDENTIALS

    def _deployed(self, endpoint: Endpoint) -> tuple[str, Live] | None:
        """(environment, live version) of the app serving the endpoint; None when nothing live serves it."""
        with self.api._lock:
            state = self.api.state
            for (environment, name), app_id in state.deployed_names.items():
                app = state.apps[app_id]
                if name != endpoint.app_name or app.state != api_pb2.APP_STATE_DEPLOYED:
                    continue
                for definition in live_definitions(self.api, app_id):
                    served = served_at(definition, endpoint.url)
                    if served is not None:
                        return environment, Live(app_id, app.version, served)
        return None

    async def _run(
        self,
        call: HeldCall,
        endpoint: Endpoint,
        live: Live,
        request: web.Request,
        body: bytes,
    ) -> None:
        """Boot a container if none runs, send the request to its edge, keep the answer for every poll."""
        try:
            container = await self._container(endpoint, live)
            assert self._session is not None
            url = (
                URL(container.url)
                .with_path(request.path)
                .with_query(request.url.query)
                .without_query_params(CALL_PARAM)
            )
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
            async with self._session.request(request.method, url, headers=headers, data=body) as answer:
                call.status = answer.status
                call.headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS]
                call.started.set()
                async for chunk in answer.content.iter_any():
                    async with call.changed:
                        call.chunks.append(chunk)
                        call.changed.notify_all()
        except Exception as error:  # the container died or refused: Modal answers 5xx
            if not call.started.is_set():
                call.status, call.headers = 502, [("content-type", "text/plain")]
                call.chunks.append(f"modal-http: internal error: {error.__class__.__name__}".encode())
                call.started.set()
        finally:
            async with call.changed:
                call.done = True
                call.changed.notify_all()

    async def _relay(self, call: HeldCall, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=call.status, headers=dict(call.headers))
        await response.prepare(request)
        try:
            async for chunk in chunks(call):
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client gave up (its own deadline); the call's result stays for a poll
        return response

    # ---- containers ----------------------------------------------------------------------
    async def _container(self, endpoint: Endpoint, live: Live) -> FrontContainer:
        lock = self._boot_locks.setdefault(live.app_id, asyncio.Lock())
        async with lock:
            running = self._containers.get(live.app_id)
            if running is not None and self._alive(running) and running.version == live.version:
                return running
            return await self._boot(endpoint, live)

    def _alive(self, container: FrontContainer) -> bool:
        with self.api._lock:
            record = self.api.state.containers.get(container.task_id)
            return record is not None and not record.finished_at

    async def _boot(self, endpoint: Endpoint, live: Live) -> FrontContainer:
        app_id, version, snapshots = live.app_id, live.version, live.snapshots
        key = (app_id, version)
        restore = snapshots and key in self._snapshots
        with self.api._lock:
            environment = next(env for (env, name), aid in self.api.state.deployed_names.items() if aid == app_id)
            task_id = self.api._add_container(endpoint.app_name, environment)
        seconds = self.settings.restore_seconds if restore else self.settings.boot_seconds
        started = time.monotonic()
        await asyncio.sleep(seconds)
        if snapshots and not restore:
            self._cold_boots[key] = self._cold_boots.get(key, 0) + 1
            if self._cold_boots[key] >= self.settings.snapshot_after:
                self._snapshots.add(key)  # taken during this boot; the next cold start restores
        container = FrontContainer(
            task_id, app_id, version, "restore" if restore else "cold", round(time.monotonic() - started, 2)
        )
        config = EdgeConfig(
            upstream_url=self.settings.upstream_url,
            # Modal checked the token before the request reached the container (serving.py does the same).
            auth_mode="modal-proxy" if live.requires_auth else "public",
            health_info=lambda: {
                "boot": container.boot,
                "boot_seconds": container.boot_seconds,
                "snapshot": live.served.snapshot,
            },
        )
        await asyncio.to_thread(start_edge, container, config)
        previous = self._containers.get(app_id)
        self._containers[app_id] = container
        if previous is not None:
            await asyncio.to_thread(previous.stop)
        self.boots.append(Boot(endpoint.app_name, version, container.boot))
        return container

    async def _reap(self) -> None:
        """Stop the edge of every container the recorder marked stopped (``modal container stop``)."""
        while True:
            await asyncio.sleep(0.2)
            for app_id, container in list(self._containers.items()):
                if not self._alive(container):
                    del self._containers[app_id]
                    await asyncio.to_thread(container.stop)
