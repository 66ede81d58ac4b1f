"""The Starlette app: parse JSON, build the same configs the library uses, hand them to the job runner."""

from __future__ import annotations

import asyncio
import json
import contextlib
import hmac
import logging
import re
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any
from collections.abc import AsyncIterator, Mapping

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..core import fields as config_fields
from ..core._cluster import require_ray
from ..core._io import dumps, utc_now_iso
from ..core.config import EvalConfig, PerfConfig
from ..core.errors import ConfigError
from ..core.eval._extra import require_eval
from ..core.jobs import (
    ACTIVE_STATES,
    CANCELLED,
    COMPLETED,
    DEFAULT_CANCEL_GRACE_S,
    DEFAULT_EVAL_CONCURRENCY,
    DEFAULT_MAX_QUEUED,
    INTERRUPTED,
    KINDS,
    LOG_TAIL_MAX_BYTES,
    STATES,
    Job,
    JobRunner,
    JobStateError,
    PathPolicy,
)
from ..core.jobs._limits import ServiceLimits, TargetPolicy
from ..core.status import HTTP_STATUS, ErrorCategory
from ..core.errors import BodyTooLarge, UnsupportedMediaType
from ..core.report.compare import compare as compare_runs
from ._dashboard import dashboard_routes
from ._errors import CatchAll, JSONResponse, error_response, exception_handlers
from ._metrics import CONTENT_TYPE, ServiceMetrics
from ._observe import Observe, current_request_id
from ._openapi import build_openapi

log = logging.getLogger("evalsvc.service")

ENV_OUTPUTS = "EVALSVC_OUTPUTS"
ENV_TOKEN = "EVALSVC_TOKEN"
ENV_TOKEN_FILE = "EVALSVC_TOKEN_FILE"
ENV_DATA_ROOTS = "EVALSVC_DATA_ROOTS"
ENV_MAX_QUEUE = "EVALSVC_MAX_QUEUE"
ENV_EVAL_CONCURRENCY = "EVALSVC_EVAL_CONCURRENCY"
ENV_DATASET_DIR = "EVALSVC_DATASET_DIR"

DEFAULT_OUTPUTS = "outputs"
MAX_BODY_BYTES = 1 << 20
SSE_HEARTBEAT_S = 15.0
RETENTION_PERIOD_S = 3600.0

_MESSAGES = {"eval": ("Evaluation", "Evaluation completed"),
             "perf": ("Performance test", "Performance test completed"),
             "capacity": ("Capacity search", "Capacity search completed")}


@dataclass
class ServiceSettings:
    """How the service runs. `from_env` fills what the caller left as None from EVALSVC_* variables."""

    outputs: str = DEFAULT_OUTPUTS
    """Outputs root: every run's work_dir resolves inside it; the job database lives in its .evalsvc/."""
    token: str | None = None
    """Bearer token required on every /api/ route (None or empty: no auth)."""
    debug: bool = False
    """500 answers carry the traceback."""
    data_roots: tuple[str, ...] = ()
    """Directories runs may read datasets / tokenizers from, besides the outputs root."""
    dataset_dir: str | None = None
    """Local benchmark copies (one folder per benchmark) for eval requests that name no dataset_dir."""
    max_queued: int = DEFAULT_MAX_QUEUED
    eval_concurrency: int = DEFAULT_EVAL_CONCURRENCY
    perf_concurrency: int = 1
    cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S
    limits: ServiceLimits = field(default_factory=ServiceLimits)
    """What one job may ask for (requests, concurrency, tokens, warm-up, wall time, text sizes)."""
    keep_days: float | None = None
    """Delete finished jobs (outputs, log, record) this many days after they finished (None: keep them)."""
    allow_targets: tuple[str, ...] = ()
    """Hosts / addresses / networks runs may send requests to (empty: any but link-local)."""
    allow_origins: tuple[str, ...] = ()
    """Browser origins (scheme://host[:port], or "*") besides the service's own that may call /api/ routes."""
    metrics_public: bool = False
    """Serve /metrics without the bearer token (for a Prometheus that cannot send one)."""
    targets: dict[str, str] = field(default_factory=dict)
    """Job kind -> "module:function" overriding the engines (tests use stand-ins)."""
    ray_address: str | None = None
    """The Ray cluster perf and eval jobs run on (None: in the job's own processes). A body may only repeat it."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **given: Any) -> ServiceSettings:
        """Settings from keyword arguments, falling back to EVALSVC_* environment variables, then defaults.

        Raises:
            ConfigError: an environment variable holds an invalid value.
        """
        env = os.environ if env is None else env
        values = {k: v for k, v in given.items() if v is not None}
        if "outputs" not in values and env.get(ENV_OUTPUTS):
            values["outputs"] = env[ENV_OUTPUTS]
        if "token" not in values and env.get(ENV_TOKEN_FILE):
            values["token"] = read_token_file(env[ENV_TOKEN_FILE], ENV_TOKEN_FILE)
        if "token" not in values and env.get(ENV_TOKEN):
            values["token"] = env[ENV_TOKEN]
        if "dataset_dir" not in values and env.get(ENV_DATASET_DIR):
            values["dataset_dir"] = env[ENV_DATASET_DIR]
        if "data_roots" not in values and env.get(ENV_DATA_ROOTS):
            values["data_roots"] = tuple(p for p in env[ENV_DATA_ROOTS].split(os.pathsep) if p)
        for name, var in (("max_queued", ENV_MAX_QUEUE), ("eval_concurrency", ENV_EVAL_CONCURRENCY)):
            if name not in values and env.get(var):
                try:
                    values[name] = int(env[var])
                except ValueError:
                    raise ConfigError(var, f"must be an integer, got {env[var]!r}") from None
        settings = cls(**values)
        settings.data_roots = tuple(str(p) for p in settings.data_roots)
        settings.allow_origins = tuple(_origin(o) for o in settings.allow_origins)
        if settings.max_queued < 0:
            raise ConfigError("max_queued", f"must be >= 0, got {settings.max_queued}")
        if settings.keep_days is not None and not settings.keep_days > 0:
            raise ConfigError("keep_days", f"must be > 0, got {settings.keep_days}")
        for name in ("eval_concurrency", "perf_concurrency"):
            if getattr(settings, name) < 1:
                raise ConfigError(name, f"must be >= 1, got {getattr(settings, name)}")
        return settings


def read_token_file(path: str | os.PathLike[str], field: str = "token_file") -> str:
    """The bearer token kept in a file (its first line, stripped): unlike --token, it never shows in `ps`.

    Raises:
        ConfigError: the file cannot be read or holds no token.
    """
    try:
        with open(path, encoding="utf-8") as file:
            token = file.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(field, f"cannot read the token file {os.fspath(path)!r}: {exc}") from None
    if not token:
        raise ConfigError(field, f"the token file {os.fspath(path)!r} is empty")
    return token


class Service:
    """What the handlers share: settings, path policy, the runner (started on first need) and the OpenAPI doc."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.policy = PathPolicy(settings.outputs, settings.data_roots, settings.dataset_dir)
        self.runner = JobRunner(self.policy, max_queued=settings.max_queued,
                                eval_concurrency=settings.eval_concurrency,
                                perf_concurrency=settings.perf_concurrency,
                                cancel_grace_s=settings.cancel_grace_s, targets=settings.targets,
                                debug=settings.debug)
        self.openapi = build_openapi(auth=bool(settings.token), metrics_public=settings.metrics_public)
        self.started_at = time.monotonic()
        self._start_lock: asyncio.Lock | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.targets = TargetPolicy(settings.allow_targets)
        self.metrics = ServiceMetrics(self.runner)

    async def config_from_body(self, kind: str, body: Any) -> PerfConfig | EvalConfig:
        """The run config for a client's body: validated, paths confined, within the operator's limits,
        aimed at a target the service may call.

        Raises:
            ConfigError: invalid fields, paths outside the roots, a value beyond a limit, a refused target.
        """
        cluster = self.settings.ray_address
        if isinstance(body, dict) and body.get("ray_address") not in (None, cluster):
            # where jobs run is the operator's choice, like the targets they may call: never a client's
            raise ConfigError("ray_address", "the service chooses the Ray cluster jobs run on (evalsvc service "
                              f"--ray-address, here {cluster or 'none'}); a request may not name another")
        config = self.settings.limits.apply(self.policy.config_from_body(kind, body))
        if cluster and config.ray_address is None:
            config = config_fields.replace(config, {"ray_address": cluster})
        if isinstance(config, EvalConfig):
            await asyncio.to_thread(self.targets.check, "api_url", config.api_url)
        else:
            await asyncio.to_thread(self.targets.check, "url", config.url)
        return config

    async def housekeeping(self, period_s: float = 1.0) -> None:
        """Stop jobs running longer than the limit max_job_seconds (checked every period), and delete jobs
        that finished more than keep_days ago (at start, then hourly, or every tenth of keep_days if shorter)."""
        limit = self.settings.limits.max_job_seconds
        first_seen: dict[str, float] = {}
        pruned_at = -math.inf
        while True:
            keep_s = self.settings.keep_days * 86400 if self.settings.keep_days is not None else None
            if keep_s is not None and time.monotonic() - pruned_at >= min(RETENTION_PERIOD_S, keep_s / 10):
                pruned_at = time.monotonic()
                try:
                    await self.runner.prune(keep_s)
                except Exception:  # a full disk must not stop the wall-time checks
                    log.exception("retention: pruning old jobs failed")
            await asyncio.sleep(period_s)
            now = time.monotonic()
            running = {job.id for job in self.runner.running_jobs()}
            for job_id in list(first_seen):
                if job_id not in running:
                    del first_seen[job_id]
            for job_id in running:
                if now - first_seen.setdefault(job_id, now) > limit:
                    log.warning("job %s: running longer than max_job_seconds=%gs; stopping it", job_id, limit)
                    await self.runner.expire(job_id, f"the job ran longer than the service's limit max_job_seconds = "
                                             f"{limit:g} s (evalsvc service --max-job-seconds)")

    async def jobs(self) -> JobRunner:
        """The runner, started if the ASGI server did not run the lifespan."""
        if not self.runner.started:
            if self._start_lock is None:
                self._start_lock = asyncio.Lock()
            async with self._start_lock:
                if not self.runner.started:
                    await self.runner.start()
                    self._watchdog = asyncio.ensure_future(self.housekeeping())
        return self.runner

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        await self.runner.close()


def create_app(outputs: str | os.PathLike[str] | None = None, *, token: str | None = None, debug: bool | None = None,
               data_roots: tuple[str, ...] | list[str] | None = None, dataset_dir: str | os.PathLike[str] | None = None,
               max_queued: int | None = None,
               eval_concurrency: int | None = None, perf_concurrency: int | None = None,
               cancel_grace_s: float | None = None, targets: dict[str, str] | None = None,
               allow_origins: tuple[str, ...] | list[str] | None = None,
               limits: ServiceLimits | None = None, allow_targets: tuple[str, ...] | list[str] | None = None,
               keep_days: float | None = None, metrics_public: bool | None = None,
               ray_address: str | None = None) -> Starlette:
    """The evalsvc HTTP service as an ASGI app (serve it with uvicorn or any ASGI server).

    Arguments left as None come from EVALSVC_OUTPUTS, EVALSVC_TOKEN, EVALSVC_DATA_ROOTS, EVALSVC_DATASET_DIR,
    EVALSVC_MAX_QUEUE and EVALSVC_EVAL_CONCURRENCY, then from the defaults.

    Args:
        outputs: outputs root ("outputs"): runs write under it; the job database lives in its .evalsvc/.
        token: bearer token guarding /api/ routes (none: no auth).
        debug: include tracebacks in 500 answers.
        data_roots: directories runs may read local datasets and tokenizers from.
        dataset_dir: local benchmark copies used by eval requests that name no dataset_dir (offline machines).
        max_queued: jobs allowed to wait (16); one more gets 429.
        eval_concurrency: eval jobs running at once (2). Perf jobs always run one at a time by default.
        perf_concurrency: perf jobs running at once (1).
        cancel_grace_s: seconds a cancelled run may take to stop before it is terminated (15).
        targets: job kind -> "module:function" replacing the engines (for tests).
        allow_origins: browser origins ("https://ui.example.org", or "*") that may call /api/ routes besides
            the service's own; a request whose Origin header names any other is refused (403).
        limits: what one job may ask for (ServiceLimits(): its defaults).
        allow_targets: host names, addresses or networks (CIDR) runs may call; empty: any host except
            link-local ones (cloud metadata), which are refused unless listed.
        keep_days: delete finished jobs (output directory, log, record) this many days after they finished.
        metrics_public: serve /metrics without the bearer token (by default it needs it, like /api/).
        ray_address: the Ray cluster perf and eval jobs run on ("auto", "ray://host:port", "host:port"; needs
            the ray extra); a request body may leave `ray_address` out or repeat it, never name another (400).

    Returns:
        A Starlette app; its lifespan starts the job runner and stops running jobs on shutdown.
    """
    settings = ServiceSettings.from_env(
        outputs=os.fspath(outputs) if outputs is not None else None, token=token, debug=debug,
        data_roots=tuple(data_roots) if data_roots is not None else None,
        dataset_dir=os.fspath(dataset_dir) if dataset_dir is not None else None, max_queued=max_queued,
        eval_concurrency=eval_concurrency, perf_concurrency=perf_concurrency, cancel_grace_s=cancel_grace_s,
        targets=targets, allow_origins=tuple(allow_origins) if allow_origins is not None else None,
        limits=limits, allow_targets=tuple(allow_targets) if allow_targets is not None else None,
        keep_days=keep_days, metrics_public=metrics_public, ray_address=ray_address)
    if settings.ray_address is not None:  # the checks a body's ray_address meets: one line, exit 2
        declared = config_fields.declared(PerfConfig)["ray_address"]
        config_fields.check("ray_address", settings.ray_address, declared.type, declared.spec)
        require_ray()
    service = Service(settings)
    routes = _routes(service) + dashboard_routes()
    endpoints = [f"{m} {r.path}" for r in routes for m in sorted(r.methods or ()) if m != "HEAD"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.jobs()
        try:
            yield
        finally:
            await service.close()

    app = Starlette(
        debug=False,  # our handlers answer JSON, with the traceback when settings.debug
        routes=routes,
        middleware=[Middleware(Observe, routes=routes, observer=service.metrics.observe_request),
                    Middleware(CatchAll, debug=settings.debug),
                    Middleware(OriginCheck, allowed=settings.allow_origins),
                    *([Middleware(BearerAuth, token=settings.token,
                                  exact=() if settings.metrics_public else ("/metrics",))] if settings.token else [])],
        exception_handlers=exception_handlers(settings.debug, endpoints),
        lifespan=lifespan,
    )
    app.state.service = service
    return app


class OriginCheck:
    """Refuses /api/ requests a browser sends on behalf of another site (cross-site request forgery).

    A browser names the page's origin in `Origin` on cross-site requests, and a page may POST a plain-text or
    form body without asking first. So a request whose Origin is present and is neither the service's own
    (the scheme and Host it was reached at) nor one the operator allowed gets 403; clients that are not
    browsers send no Origin and pass. Bodies must also be `application/json` (415 otherwise, see
    _read_json), which a page cannot send cross-site without a CORS preflight the service never grants.
    """

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/") and "*" not in self.allowed:
            headers = dict(scope["headers"])
            origin = headers.get(b"origin")
            if origin is not None:
                text = origin.decode("latin-1").strip().lower().rstrip("/")
                host = headers.get(b"host", b"").decode("latin-1").strip().lower()
                own = {f"http://{host}", f"https://{host}"} if host else set()
                if text not in own and text not in self.allowed:
                    response = error_response(
                        403, f"requests from origin {text[:200]!r} are not allowed: the service only accepts "
                        "browser requests from its own origin (evalsvc service --allow-origin ORIGIN adds one)",
                        {"type": "OriginNotAllowed", "origin": text[:200]})
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _origin(value: str) -> str:
    """An --allow-origin value in the form browsers send: scheme://host[:port], lower case, or "*"."""
    text = str(value).strip().lower().rstrip("/")
    if text == "*":
        return text
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
        raise ConfigError("allow_origin", f"must be an origin such as https://ui.example.org (scheme://host[:port]) "
                          f"or '*', got {value!r}")
    return text


class BearerAuth:
    """Requires `Authorization: Bearer <token>` on every /api/ route and the `exact` paths (/metrics unless
    --metrics-public); other routes (/health, /openapi.json, the dashboard's page and assets) stay open."""

    def __init__(self, app: ASGIApp, token: str, exact: tuple[str, ...] = ()) -> None:
        self.app = app
        self.token = token.encode()
        self.exact = frozenset(exact)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"].startswith("/api/") or scope["path"] in self.exact):
            supplied = b""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    scheme, _, credentials = value.partition(b" ")
                    if scheme.lower() == b"bearer":
                        supplied = credentials.strip()
                    break
            if not hmac.compare_digest(supplied, self.token):
                message = "missing bearer token" if not supplied else "invalid bearer token"
                response = error_response(401, f"{message}: send 'Authorization: Bearer <token>'",
                                          {"type": "Unauthorized"}, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _routes(service: Service) -> list[Route]:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": "evalsvc", "timestamp": utc_now_iso(),
                             "version": __version__, "uptime_s": round(time.monotonic() - service.started_at, 3),
                             "jobs": service.runner.stats()})

    async def openapi(request: Request) -> Response:
        return JSONResponse(service.openapi)

    def kind_of(request: Request) -> str:
        if request.url.path.endswith("/eval"):
            require_eval()  # 501 before the body is read: this install cannot evaluate
            return "eval"
        if request.url.path.endswith("/capacity"):
            return "capacity"
        return "perf"

    async def run_blocking(request: Request) -> Response:
        kind = kind_of(request)
        config = await service.config_from_body(kind, await _read_json(request))
        runner = await service.jobs()
        job = runner.submit(kind, config, request_id=current_request_id())
        finished = await _wait_unless_disconnected(request, runner, job.id)
        if finished is None:
            return Response(status_code=499)  # the client is gone; nobody reads this
        return outcome_response(finished)

    async def submit_job(request: Request) -> Response:
        kind = kind_of(request)
        config = await service.config_from_body(kind, await _read_json(request))
        runner = await service.jobs()
        job = runner.submit(kind, config, request_id=current_request_id())
        base = f"/api/v1/jobs/{job.id}"
        return JSONResponse({"status": "accepted", "job_id": job.id, "job": job.summary(),
                             "links": {"self": base, "result": f"{base}/result", "events": f"{base}/events",
                                       "cancel": f"{base}/cancel"}},
                            status_code=202, headers={"Location": base})

    async def list_jobs(request: Request) -> Response:
        query = request.query_params
        unknown = sorted(set(query) - {"state", "kind", "limit", "offset"})
        if unknown:
            raise ConfigError(unknown[0], "unknown query parameter (accepted: kind, limit, offset, state)")
        state = _choice(query, "state", STATES)
        kind = _choice(query, "kind", KINDS)
        limit = _int_param(query, "limit", 50, low=1, high=1000)
        offset = _int_param(query, "offset", 0, low=0, high=2**62)
        runner = await service.jobs()
        jobs, total = await runner.list(state=state, kind=kind, limit=limit, offset=offset)
        return JSONResponse({"status": "ok", "jobs": jobs, "total": total, "limit": limit, "offset": offset})

    async def get_job(request: Request) -> Response:
        job = await (await service.jobs()).get(request.path_params["job_id"])
        return JSONResponse({"status": "ok", "job": job.summary()})

    async def job_result(request: Request) -> Response:
        job = await (await service.jobs()).get(request.path_params["job_id"])
        return outcome_response(job)

    async def cancel_job(request: Request) -> Response:
        job = await (await service.jobs()).cancel(request.path_params["job_id"])
        return JSONResponse({"status": "ok", "job": job.summary()}, status_code=200 if job.finished else 202)

    async def delete_job(request: Request) -> Response:
        job = await (await service.jobs()).delete(request.path_params["job_id"])
        return JSONResponse({"status": "ok", "deleted": True, "job": job.summary()})

    async def job_resource(request: Request) -> Response:
        return await (delete_job if request.method == "DELETE" else get_job)(request)

    async def job_events(request: Request) -> Response:
        runner = await service.jobs()
        job_id = request.path_params["job_id"]
        await runner.get(job_id)  # 404 before the stream starts
        return StreamingResponse(_sse(runner.events(job_id, heartbeat_s=SSE_HEARTBEAT_S)),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def job_log(request: Request) -> Response:
        max_bytes = _int_param(request.query_params, "max_bytes", 65536, low=1, high=LOG_TAIL_MAX_BYTES)
        text, cut = await (await service.jobs()).log_tail(request.path_params["job_id"], max_bytes)
        return PlainTextResponse(text, headers={"X-Log-Truncated": "true" if cut else "false",
                                                "Cache-Control": "no-store"})

    async def job_report(request: Request) -> Response:
        job = await (await service.jobs()).get(request.path_params["job_id"])
        path = await asyncio.to_thread(service.policy.job_file, job.output_dir, "report.html")
        if path is None:
            return error_response(404, f"job {job.id} has no report.html"
                                  + ("" if job.finished else f" yet (it is {job.state})"),
                                  {"type": "NoReport", "job_id": job.id, "state": job.state})
        content = await asyncio.to_thread(path.read_bytes)
        # opened on its own, the report runs sandboxed: its scripts cannot reach the service with the user's rights
        return Response(content, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": "sandbox allow-scripts", "Cache-Control": "no-store"})

    async def compare(request: Request) -> Response:
        query = request.query_params
        unknown = sorted(set(query) - {"base", "new", "format"})
        if unknown:
            raise ConfigError(unknown[0], "unknown query parameter (accepted: base, new, format)")
        page = query.get("format", "json")
        if page not in ("json", "html"):
            raise ConfigError("format", f"must be json or html, got {page!r}")
        runner = await service.jobs()
        dirs = []
        for name in ("base", "new"):
            job_id = query.get(name)
            if not job_id:
                raise ConfigError(name, "is required: the id of a finished job")
            job = await runner.get(job_id)
            run_dir = service.policy.removable(job.output_dir) if job.finished else None
            if run_dir is None or not run_dir.is_dir():
                raise ConfigError(name, f"job {job_id} ({job.state}) has no run directory to compare")
            dirs.append(run_dir)
        result = await asyncio.to_thread(compare_runs, dirs[0], dirs[1])
        if page == "html":  # the comparison page (both runs on the same charts), sandboxed like a report
            html = await asyncio.to_thread(result.to_html)
            return Response(html, media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": "sandbox allow-scripts", "Cache-Control": "no-store"})
        return JSONResponse({"status": "ok", "base": query["base"], "new": query["new"],
                             "comparison": result.to_dict()})

    async def metrics(request: Request) -> Response:
        await service.jobs()
        return Response(await service.metrics.render(), media_type=CONTENT_TYPE)

    async def root(request: Request) -> Response:
        return RedirectResponse("/ui", status_code=307)

    return [
        Route("/", root, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/api/v1/eval", run_blocking, methods=["POST"]),
        Route("/api/v1/perf", run_blocking, methods=["POST"]),
        Route("/api/v1/capacity", run_blocking, methods=["POST"]),
        Route("/api/v1/jobs", list_jobs, methods=["GET"]),
        Route("/api/v1/jobs/eval", submit_job, methods=["POST"]),
        Route("/api/v1/jobs/perf", submit_job, methods=["POST"]),
        Route("/api/v1/jobs/capacity", submit_job, methods=["POST"]),
        Route("/api/v1/jobs/{job_id}", job_resource, methods=["GET", "DELETE"]),  # one route: one Allow header
        Route("/api/v1/jobs/{job_id}/result", job_result, methods=["GET"]),
        Route("/api/v1/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
        Route("/api/v1/jobs/{job_id}/events", job_events, methods=["GET"]),
        Route("/api/v1/jobs/{job_id}/log", job_log, methods=["GET"]),
        Route("/api/v1/jobs/{job_id}/report", job_report, methods=["GET"]),
        Route("/api/v1/compare", compare, methods=["GET"]),
    ]


RESERVED_KEYS = frozenset({"status", "message", "error", "job_id", "state", "job"})
"""Keys of an outcome body that belong to the service's answer; the engine's result never supplies them."""


def outcome_response(job: Job) -> JSONResponse:
    """A job's outcome as the blocking endpoints answer it (and /jobs/{id}/result too).

    completed: 200 with SPEC §5's success body. Otherwise an error body with the job's error and any partial
    result: 400 invalid input found by the engine, 502 endpoint unusable, 504 time limit, 409 cancelled,
    503 interrupted by a service shutdown, 500 anything else; 409 as well while the job has not finished.
    The engine's own fields sit beside the service's (status, message, error, job_id, state), which always
    win; the engine's error text, when it has one the job error does not already say, is `run_error`.
    """
    what, done_message = _MESSAGES[job.kind]
    if job.state in ACTIVE_STATES:
        return error_response(409, f"job {job.id} is {job.state}; it has no result yet",
                              {"type": "JobStateError", "job_id": job.id, "state": job.state},
                              job_id=job.id, state=job.state, job=job.summary())
    error = dict(job.error or {})
    data = _engine_fields(job.result, error.get("message"))
    data.setdefault("output_dir", job.output_dir)
    if job.state == COMPLETED:
        return JSONResponse({"status": "success", "message": done_message, **data, "job_id": job.id})
    category = error.get("category")  # stored as a string; ErrorCategory is a StrEnum, so it looks up alike
    if job.state == CANCELLED:
        status, message = 409, f"{what} was cancelled"
    elif job.state == INTERRUPTED:
        status, message = 503, f"{what} was interrupted: the service stopped"
    else:
        status = HTTP_STATUS.get(ErrorCategory(category), 500) if category in set(ErrorCategory) else 500
        message = f"{what} failed: {error.get('message', 'unknown error')}"
    body = {"status": "error", "message": message, "error": error, **data, "job_id": job.id, "state": job.state}
    return JSONResponse(body, status_code=status)


def _engine_fields(result: dict[str, Any] | None, said: Any) -> dict[str, Any]:
    """The engine's result fields that may go in an answer: none of RESERVED_KEYS, no `"error": null`."""
    data = {k: v for k, v in (result or {}).items() if k not in RESERVED_KEYS}
    run_error = (result or {}).get("error")
    if run_error is not None and run_error != said:
        data["run_error"] = run_error
    return data


async def _read_json(request: Request) -> Any:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"the request body must be JSON sent as Content-Type: application/json, got "
            f"{media_type[:100] or 'no Content-Type'!r} (curl: add -H 'Content-Type: application/json', or use --json)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"the request body is {declared} bytes; the limit is {MAX_BODY_BYTES}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise BodyTooLarge(f"the request body exceeds the limit of {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ConfigError("body", "the client disconnected before sending the whole body") from None
    raw = b"".join(chunks)
    if not raw.strip():
        raise ConfigError("body", "is empty; send a JSON object with the run's fields")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError("body", f"is not valid JSON: {exc}") from None
    if _LONG_NUMBER.search(raw):
        # orjson reads an integer beyond 64 bits as a float, rounded (-2**63 - 1 becomes -2**63, in range):
        # read such a body again exactly, so the range checks see the number that was sent
        body = json.loads(raw)
    return body


_LONG_NUMBER = re.compile(rb"\d{19,}")  # more digits than a 64-bit integer can hold without rounding


async def _wait_unless_disconnected(request: Request, runner: JobRunner, job_id: str) -> Job | None:
    """Wait for the job; if the client disconnects first, cancel the job (nobody will read the answer)."""
    waiter = asyncio.ensure_future(runner.wait(job_id))
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not waiter.done():
            waiter.cancel()
    if not waiter.cancelled() and waiter.done():
        return waiter.result()
    log.info("client of job %s disconnected; cancelling the job", job_id)
    with contextlib.suppress(JobStateError):
        await runner.cancel(job_id)
    return None


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _sse(events: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[bytes]:
    async for event, data in events:
        if event == "ping":
            yield b": ping\n\n"
        else:
            yield b"event: " + event.encode() + b"\ndata: " + dumps(data, indent=False) + b"\n\n"


def _choice(query: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = query.get(name)
    if value is None:
        return None
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}; got {value!r}")
    return value


def _int_param(query: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(name, f"must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, got {value}")
    return value
