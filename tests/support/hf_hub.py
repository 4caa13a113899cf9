"""A loopback Hugging Face hub for tests: the real ``huggingface_hub`` client talks to it unchanged.

Tests of the weight-seeding code must not reach huggingface.co (no network, gated repos, moving
``main``), yet they should exercise the *real* client, because the behaviours worth testing
(pinned revisions, typed errors, resume after a cut connection, what lands in the cache) live in
``huggingface_hub`` itself. :class:`LoopbackHub` serves in-memory repos over plain HTTP on
127.0.0.1 and answers the handful of hub routes the client uses (checked against
``huggingface_hub`` 2.4.0: ``file_download.py``, ``_snapshot_download.py``, ``hf_api.py``):

* ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=...`` -- file listing; regular files carry
  their git blob sha1 as ``oid``, LFS files also an ``lfs`` object (``oid`` = sha256, ``size``,
  ``pointerSize``), exactly what ``HfApi.verify_repo_checksums`` compares against;
* ``GET /api/models/{repo}`` and ``GET /api/models/{repo}/revision/{rev}`` -- ``repo_info``, used by
  ``snapshot_download`` when the revision is a branch rather than a commit;
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` -- ``X-Repo-Commit``, ``ETag`` (git sha1, or the
  sha256 for LFS files, which also get ``X-Linked-Etag``/``X-Linked-Size`` like the real hub),
  ``Content-Length``, ``Accept-Ranges`` and ``Range`` requests (206) so interrupted downloads resume.

Errors carry the ``X-Error-Code`` header the client maps to typed exceptions: ``RepoNotFound``
(401 without a token, 404 with one, as on the real hub), ``RevisionNotFound`` (404),
``EntryNotFound`` (404, with ``X-Repo-Commit`` so the client caches the absence) and ``GatedRepo``
(401 without a token, 403 with a token that is not granted). Gating covers file contents only: the
listing and repo info of a gated repo stay public, as on the real hub.

Header-only files (:class:`HeaderOnly`, for ``fleet new``'s tests): a safetensors file of a large
model whose header is stored and whose tensor data is not. The tree, ``HEAD`` and ``X-Linked-Size``
advertise the declared size; a ranged ``GET`` of at most :data:`SYNTHETIC_READ_LIMIT` bytes is served
(the header, then zeros where tensor data would be), which is what ``parse_safetensors_file_metadata``
asks for (``Range: bytes=0-100000``, then ``bytes=8-{n+7}`` for a longer header); any larger read is
refused with HTTP 500, so a test that downloaded the weights would fail loudly. Its sha256 is of the
stored prefix and the declared size, not of real content: nothing may verify such a file. Private repos
(``private=True``) answer ``RepoNotFound`` to a request without an accepted token, as the hub does.

Failure injection: :meth:`LoopbackHub.truncate_next` cuts the next body of a file short (full
``Content-Length`` announced, connection closed early) and :meth:`LoopbackHub.corrupt` serves other
bytes than the hashes the hub advertises. Every request is recorded (:attr:`LoopbackHub.requests`,
:meth:`LoopbackHub.downloads`) so tests can assert what the client actually fetched.

Note: ``huggingface_hub`` reads ``HF_ENDPOINT`` once, at import. In-process tests therefore pass
``endpoint=hub.endpoint`` to the client calls; subprocesses can be given ``HF_ENDPOINT``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = [
    "DEFAULT_LFS_PATTERNS",
    "SYNTHETIC_READ_LIMIT",
    "HeaderOnly",
    "HubFile",
    "LoopbackHub",
    "RecordedRequest",
    "git_blob_sha1",
    "lfs_pointer",
]

# What a typical model repo's .gitattributes sends to LFS (the hub's default template, abridged).
DEFAULT_LFS_PATTERNS: tuple[str, ...] = (
    "*.safetensors",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.h5",
    "*.msgpack",
    "*.onnx",
    "*.gguf",
    "*.model",
    "*.npz",
    "*.zip",
    "*.tar.gz",
    "tokenizer.json",
)

# The most a header-only file serves in one read: the client's first header read is 100,001 bytes
# (huggingface_hub hf_api.parse_safetensors_file_metadata, "bytes=0-100000").
SYNTHETIC_READ_LIMIT = 1 << 20

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TRUTHY = {"1", "true", "True", "yes"}

RequestKind = Literal["tree", "info", "resolve", "other"]


def git_blob_sha1(data: bytes) -> str:
    """Git's object id of a blob (``git hash-object``): the ``oid`` the hub lists for a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """Return the git-lfs pointer git stores in place of an LFS file (the hub's ``oid`` is its blob sha1)."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class HeaderOnly:
    """A file of ``size`` bytes of which only the first bytes, ``prefix``, are stored (see module doc)."""

    prefix: bytes
    size: int

    def __post_init__(self) -> None:
        if self.size < len(self.prefix):
            raise ValueError(f"declared size {self.size} is below the stored prefix ({len(self.prefix)} bytes)")


@dataclass(frozen=True)
class HubFile:
    """One file of one commit, with the hashes the hub advertises for it."""

    path: str
    data: bytes
    lfs: bool
    sha256: str
    git_oid: str  # blob sha1 of the content (regular file) or of the LFS pointer (LFS file)
    pointer_size: int  # size of the LFS pointer; 0 for regular files
    declared_size: int | None = None  # header-only files: the size advertised; ``data`` is the stored prefix

    @classmethod
    def build(cls, path: str, data: bytes | HeaderOnly, *, lfs: bool) -> HubFile:
        """Compute the hashes of ``data`` the way the hub does (synthetic ones for a header-only file)."""
        if isinstance(data, HeaderOnly):
            sha256 = hashlib.sha256(b"header-only\0%d\0" % data.size + data.prefix).hexdigest()
            pointer = lfs_pointer(sha256, data.size)
            return cls(path, data.prefix, True, sha256, git_blob_sha1(pointer), len(pointer), data.size)
        sha256 = hashlib.sha256(data).hexdigest()
        if lfs:
            pointer = lfs_pointer(sha256, len(data))
            return cls(path, data, True, sha256, git_blob_sha1(pointer), len(pointer))
        return cls(path, data, False, sha256, git_blob_sha1(data), 0)

    @property
    def size(self) -> int:
        """Size of the content in bytes (the declared size of a header-only file)."""
        return self.declared_size if self.declared_size is not None else len(self.data)

    @property
    def etag(self) -> str:
        """The ETag the hub sends on ``resolve``: sha256 for LFS files, git blob sha1 otherwise."""
        return self.sha256 if self.lfs else self.git_oid

    def tree_entry(self) -> dict[str, object]:
        """Render the file as one element of the ``/tree`` listing."""
        entry: dict[str, object] = {"type": "file", "oid": self.git_oid, "size": self.size, "path": self.path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": self.pointer_size}
        return entry


@dataclass(frozen=True)
class RecordedRequest:
    """One request the hub answered, as the client sent it and with the status it got."""

    method: str
    path: str  # decoded URL path, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # header names lower-cased
    status: int
    kind: RequestKind
    repo_id: str | None = None
    revision: str | None = None
    file_path: str | None = None  # file path inside the repo, for ``resolve`` requests
    error_code: str | None = None  # the X-Error-Code sent back, if any
    truncated: bool = False  # the body was cut short on purpose (truncate_next)

    @property
    def authorized(self) -> bool:
        """Whether the request carried a bearer token."""
        return self.headers.get("authorization", "").startswith("Bearer ")


@dataclass
class _Repo:
    repo_id: str
    gated: bool
    private: bool = False
    commits: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)


class _HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.commit = commit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hub: LoopbackHub


class LoopbackHub:
    """An in-memory Hugging Face hub on 127.0.0.1, served from a background thread.

    Use as a context manager (or call :meth:`start` / :meth:`close`)::

        with LoopbackHub() as hub:
            sha = hub.add_repo("org/model", {"config.json": b"{}"})
            snapshot_download("org/model", revision=sha, endpoint=hub.endpoint, cache_dir=tmp)

    ``accepted_tokens``: bearer tokens granted access to gated repos; ``None`` grants any token.
    """

    def __init__(self, *, accepted_tokens: Iterable[str] | None = None) -> None:
        """Create a stopped hub with no repos; :meth:`start` (or ``with``) serves it."""
        self._lock = threading.Lock()
        self._repos: dict[str, _Repo] = {}
        self._requests: list[RecordedRequest] = []
        self._truncations: dict[tuple[str | None, str], list[int]] = {}
        self._corruptions: dict[tuple[str | None, str], bytes | None] = {}
        self._accepted_tokens = None if accepted_tokens is None else frozenset(accepted_tokens)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LoopbackHub:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.hub = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-hf-hub", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and drop the kept-alive client connections (their handler threads then exit)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LoopbackHub:
        """Start serving."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop serving."""
        self.close()

    @property
    def port(self) -> int:
        """The TCP port the hub listens on."""
        if self._server is None:
            raise RuntimeError("LoopbackHub is not started")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """Base URL to pass as ``endpoint=`` (or ``HF_ENDPOINT`` to a subprocess)."""
        return f"http://127.0.0.1:{self.port}"

    # -- content ---------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | HeaderOnly],
        gated: bool = False,
        *,
        lfs_patterns: Iterable[str] = DEFAULT_LFS_PATTERNS,
        ref: str = "main",
        private: bool = False,
    ) -> str:
        """Add a commit holding ``files`` to ``repo_id`` (created if new) and point ``ref`` at it.

        Returns the commit sha: 40 hex, deterministic (sha1 over the repo id and each file's path and
        sha256), so the same content always gets the same revision. Calling again for the same repo
        adds another commit and moves ``ref`` -- how a branch moves under a pinned revision.
        Files whose name matches ``lfs_patterns`` are listed and served as LFS files; a
        :class:`HeaderOnly` value is always an LFS file. ``private``: only an accepted token sees the repo.
        """
        patterns = tuple(lfs_patterns)
        built: dict[str, HubFile] = {}
        for path, data in files.items():
            clean = path.strip("/")
            if not clean or ".." in clean.split("/"):
                raise ValueError(f"bad file path: {path!r}")
            name = clean.rsplit("/", 1)[-1]
            is_lfs = any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(clean, p) for p in patterns)
            content = data if isinstance(data, HeaderOnly) else bytes(data)
            built[clean] = HubFile.build(clean, content, lfs=is_lfs)
        digest = hashlib.sha1(f"loopback-hub\0{repo_id}\0".encode())
        for path in sorted(built):
            digest.update(f"{path}\0{built[path].sha256}\0".encode())
        sha = digest.hexdigest()
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is None:
                repo = self._repos[repo_id] = _Repo(repo_id=repo_id, gated=gated)
            repo.gated = gated
            repo.private = private
            repo.commits[sha] = built
            repo.refs[ref] = sha
        return sha

    def file(self, repo_id: str, revision: str, path: str) -> HubFile:
        """Return a file as the hub advertises it (its hashes are what clients and manifests compare with)."""
        with self._lock:
            repo = self._repos[repo_id]
            sha = revision if revision in repo.commits else repo.refs[revision]
            return repo.commits[sha][path]

    # -- failure injection -----------------------------------------------------------------------

    def truncate_next(self, path: str, n_bytes: int, *, repo_id: str | None = None) -> None:
        """Cut the next GET of ``path``: announce the full length, send ``n_bytes`` of body, close.

        Stackable: two calls cut the next two GETs. ``repo_id=None`` matches the path in any repo.
        """
        if n_bytes < 0:
            raise ValueError("n_bytes must be >= 0")
        with self._lock:
            self._truncations.setdefault((repo_id, path), []).append(n_bytes)

    def corrupt(self, path: str, replacement: bytes | None = None, *, repo_id: str | None = None) -> None:
        """Serve other bytes for ``path`` than its listed sha256 / git oid / ETag promise, until :meth:`heal`.

        Without ``replacement`` every byte is inverted, so the size still matches (bit rot: only a hash
        check can tell). With ``replacement`` those bytes are served with their own Content-Length on GET,
        while HEAD and the listing keep advertising the original size.
        """
        with self._lock:
            self._corruptions[(repo_id, path)] = replacement

    def heal(self, path: str | None = None) -> None:
        """Undo :meth:`corrupt` (for ``path``, or everywhere) and drop pending truncations."""
        with self._lock:
            if path is None:
                self._corruptions.clear()
                self._truncations.clear()
                return
            for key in [k for k in self._corruptions if k[1] == path]:
                del self._corruptions[key]
            for key in [k for k in self._truncations if k[1] == path]:
                del self._truncations[key]

    # -- observation -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def downloads(self, path: str, *, repo_id: str | None = None) -> int:
        """How many GETs of the body of ``path`` were answered (including cut and ranged ones)."""
        return sum(
            1
            for r in self.requests
            if r.kind == "resolve"
            and r.method == "GET"
            and r.file_path == path
            and r.status in (200, 206)
            and (repo_id is None or r.repo_id == repo_id)
        )

    def clear_requests(self) -> None:
        """Forget the recorded requests (e.g. between a warm-up and the step under test)."""
        with self._lock:
            self._requests.clear()

    # -- internals used by the handler -----------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _split_repo(self, segments: list[str]) -> tuple[str, list[str]]:
        """Split URL segments into a repo id (``org/name``, or a legacy bare ``name``) and the rest."""
        with self._lock:
            if len(segments) >= 2 and "/".join(segments[:2]) in self._repos:
                return "/".join(segments[:2]), segments[2:]
            if segments and segments[0] in self._repos:
                return segments[0], segments[1:]
        if len(segments) >= 2:
            return "/".join(segments[:2]), segments[2:]
        return "/".join(segments), []

    def _repo(self, repo_id: str, token: str | None) -> _Repo:
        with self._lock:
            repo = self._repos.get(repo_id)
        if repo is None or (repo.private and not self._accepts(token)):
            raise _HubError(401 if token is None else 404, "RepoNotFound", "Repository not found")
        return repo

    def _accepts(self, token: str | None) -> bool:
        return token is not None and (self._accepted_tokens is None or token in self._accepted_tokens)

    def _resolve(self, repo: _Repo, revision: str) -> str:
        with self._lock:
            if revision in repo.refs:
                return repo.refs[revision]
            if _COMMIT_RE.match(revision) and revision in repo.commits:
                return revision
        raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")

    def _check_gate(self, repo: _Repo, token: str | None) -> None:
        if not repo.gated:
            return
        if token is None:
            raise _HubError(
                401,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted. You must have access to it and be authenticated "
                "to access it. Please log in.",
            )
        if self._accepted_tokens is not None and token not in self._accepted_tokens:
            raise _HubError(
                403,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted and you are not in the authorized list. "
                f"Visit https://huggingface.co/{repo.repo_id} to ask for access.",
            )

    def _commit_files(self, repo: _Repo, sha: str) -> dict[str, HubFile]:
        with self._lock:
            return dict(repo.commits[sha])

    def _pop_truncation(self, repo_id: str, path: str) -> int | None:
        with self._lock:
            for key in ((repo_id, path), (None, path)):
                pending = self._truncations.get(key)
                if pending:
                    n = pending.pop(0)
                    if not pending:
                        del self._truncations[key]
                    return n
        return None

    def _served_bytes(self, repo_id: str, hub_file: HubFile) -> bytes:
        with self._lock:
            for key in ((repo_id, hub_file.path), (None, hub_file.path)):
                if key in self._corruptions:
                    replacement = self._corruptions[key]
                    if replacement is not None:
                        return replacement
                    return bytes(b ^ 0xFF for b in hub_file.data)
        return hub_file.data


class _Recorder(Protocol):
    """The ``record`` callback a route calls once it has answered."""

    def __call__(self, status: int, error_code: str | None = None, truncated: bool = False) -> None: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real hub; every response sets Content-Length
    server: _Server

    # -- plumbing --------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.hub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.hub._track(self.connection, add=False)

    def log_message(self, fmt: str, *args: object) -> None:
        """Stay quiet: tests read :attr:`LoopbackHub.requests` instead."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _token(self) -> str | None:
        value = self.headers.get("Authorization", "")
        if value.startswith("Bearer ") and value[len("Bearer ") :].strip():
            return value[len("Bearer ") :].strip()
        return None

    def _dispatch(self) -> None:
        hub = self.server.hub
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        info: dict[str, str | None] = {"repo_id": None, "revision": None, "file_path": None}
        kind: RequestKind = "other"

        def record(status: int, error_code: str | None = None, truncated: bool = False) -> None:
            hub._record(
                RecordedRequest(
                    method=self.command,
                    path=path,
                    query=query,
                    headers=headers,
                    status=status,
                    kind=kind,
                    repo_id=info["repo_id"],
                    revision=info["revision"],
                    file_path=info["file_path"],
                    error_code=error_code,
                    truncated=truncated,
                )
            )

        # Segments of the raw path, decoded one by one: a revision like ``refs%2Fpr%2F1`` stays one segment.
        raw_segments = [unquote(s) for s in split.path.strip("/").split("/") if s]
        try:
            if raw_segments[:2] == ["api", "models"]:
                repo_id, rest = hub._split_repo(raw_segments[2:])
                info["repo_id"] = repo_id
                if rest[:1] == ["tree"] and len(rest) >= 2:
                    kind = "tree"
                    info["revision"] = rest[1]
                    self._tree(repo_id, rest[1], "/".join(rest[2:]), query, record)
                elif rest[:1] == ["revision"] and len(rest) == 2:
                    kind = "info"
                    info["revision"] = rest[1]
                    self._info(repo_id, rest[1], record)
                elif not rest:
                    kind = "info"
                    self._info(repo_id, "main", record)
                else:
                    raise _HubError(404, None, "Not Found")
            elif raw_segments[:1] in (["api"], ["datasets"], ["spaces"]):
                raise _HubError(404, None, "Not Found (only model repos are served)")
            else:
                repo_id, rest = hub._split_repo(raw_segments)
                if rest[:1] == ["resolve"] and len(rest) >= 3:
                    kind = "resolve"
                    info["repo_id"] = repo_id
                    info["revision"] = rest[1]
                    file_path = info["file_path"] = "/".join(rest[2:])
                    self._resolve(repo_id, rest[1], file_path, record)
                else:
                    raise _HubError(404, None, "Not Found")
        except _HubError as err:
            self._send_error(err, record)

    def _send_error(self, err: _HubError, record: _Recorder) -> None:
        body = json.dumps({"error": err.message}).encode()
        self.send_response(err.status)
        if err.code is not None:
            self.send_header("X-Error-Code", err.code)
        self.send_header("X-Error-Message", err.message)
        if err.commit is not None:
            self.send_header("X-Repo-Commit", err.commit)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        record(err.status, err.code)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, payload: object, record: _Recorder) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        record(200)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- routes ----------------------------------------------------------------------------------

    def _tree(self, repo_id: str, revision: str, folder: str, query: dict[str, list[str]], record: _Recorder) -> None:
        hub = self.server.hub
        repo = hub._repo(repo_id, self._token())
        sha = hub._resolve(repo, revision)
        files = hub._commit_files(repo, sha)
        recursive = query.get("recursive", ["false"])[-1] in _TRUTHY
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in files):
            raise _HubError(404, "EntryNotFound", f"{folder} does not exist on {revision}", commit=sha)
        entries: dict[str, dict[str, object]] = {}
        for path, hub_file in sorted(files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            # Folders along the way, as the hub lists them (``type: directory``).
            for depth in range(1, len(parts)):
                if depth > 1 and not recursive:
                    break
                folder_path = prefix + "/".join(parts[:depth])
                entries.setdefault(
                    folder_path,
                    {
                        "type": "directory",
                        "oid": hashlib.sha1(f"tree\0{sha}\0{folder_path}".encode()).hexdigest(),
                        "size": 0,
                        "path": folder_path,
                    },
                )
            if recursive or len(parts) == 1:
                entries[path] = hub_file.tree_entry()
        self._send_json([entries[k] for k in sorted(entries)], record)

    def _info(self, repo_id: str, revision: str, record: _Recorder) -> None:
        hub = self.server.hub
        repo = hub._repo(repo_id, self._token())
        sha = hub._resolve(repo, revision)
        files = hub._commit_files(repo, sha)
        author = repo_id.split("/")[0] if "/" in repo_id else None
        payload = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": author,
            "sha": sha,
            "private": repo.private,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "tags": [],
            "siblings": [{"rfilename": p} for p in sorted(files)],
        }
        self._send_json(payload, record)

    def _resolve(self, repo_id: str, revision: str, file_path: str, record: _Recorder) -> None:
        hub = self.server.hub
        token = self._token()
        repo = hub._repo(repo_id, token)
        sha = hub._resolve(repo, revision)
        hub._check_gate(repo, token)
        hub_file = hub._commit_files(repo, sha).get(file_path)
        if hub_file is None:
            raise _HubError(404, "EntryNotFound", f"{file_path} does not exist on {revision}", commit=sha)

        if self.command == "HEAD":
            self.send_response(200)
            self._file_headers(hub_file, sha, hub_file.size)
            self.send_header("Content-Length", str(hub_file.size))
            record(200)
            self.end_headers()
            return

        body = hub._served_bytes(repo_id, hub_file)
        total = hub_file.size if hub_file.declared_size is not None else len(body)
        status, start, end = 200, 0, total
        range_header = self.headers.get("Range")
        if range_header:
            match = _RANGE_RE.match(range_header.strip())
            first = int(match.group(1)) if match and match.group(1) else None
            last = int(match.group(2)) if match and match.group(2) else None
            if match is None or (first is None and last is None):
                raise _HubError(416, None, f"Invalid range {range_header}")
            if first is None:  # suffix range: the last N bytes
                assert last is not None
                start, end = max(total - last, 0), total
            else:
                start, end = first, total if last is None else min(last + 1, total)
            if (start >= total and total > 0) or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.send_header("Content-Length", "0")
                record(416)
                self.end_headers()
                return
            status = 206
        if hub_file.declared_size is not None and end > len(body):
            if end - start > SYNTHETIC_READ_LIMIT:
                raise _HubError(
                    500,
                    None,
                    f"loopback hub: only the header of {file_path} is stored; reads past it are limited to "
                    f"{SYNTHETIC_READ_LIMIT} bytes (asked bytes {start}-{end - 1})",
                )
            body = body + bytes(end - len(body))  # zeros where tensor data would be
        chunk = body[start:end]
        cut = hub._pop_truncation(repo_id, file_path)

        self.send_response(status)
        self._file_headers(hub_file, sha, total)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{max(end - 1, start)}/{total}")
        self.send_header("Content-Length", str(len(chunk)))
        if cut is not None:
            self.send_header("Connection", "close")
        # Recorded before the client can see the answer, so tests never race the log.
        record(status, truncated=cut is not None)
        self.end_headers()
        if cut is None:
            self.wfile.write(chunk)
            return
        # Failure injection: full length announced, fewer bytes sent, connection closed.
        self.wfile.write(chunk[:cut])
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)

    def _file_headers(self, hub_file: HubFile, sha: str, size: int) -> None:
        self.send_header("X-Repo-Commit", sha)
        self.send_header("ETag", f'"{hub_file.etag}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        name = quote(hub_file.path.rsplit("/", 1)[-1])
        self.send_header("Content-Disposition", f"inline; filename*=UTF-8''{name}; filename=\"{name}\";")
        if hub_file.lfs:
            # The real hub answers LFS files with a redirect carrying these; the client prefers them to ETag.
            self.send_header("X-Linked-Etag", f'"{hub_file.sha256}"')
            self.send_header("X-Linked-Size", str(hub_file.size))
