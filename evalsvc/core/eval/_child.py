"""The processes behind run_eval: a zygote that imports evalscope once, and one worker per dataset forked from it.

`zygote(CONTROL_FD)`, started as a child by _zygote.py, is the zygote (in its own session; see core/_proc.py
for how children start and talk). It imports evalscope (~1.5 s of CPU, more on a busy machine) and prints
{"type": "ready"} on stdout; it then only forks. Each request on the control socket (a Unix socket)
carries three pipe ends (the worker's stdin, its event stream and its stderr); the zygote forks a worker
onto them and answers with a frame {"pid": N}, and later {"exit": N, "code": C} when that worker ends.
End of file on the socket ends the zygote.
Forking a warm process is ~100x cheaper than importing evalscope again, so datasets start at once
however many run together. The zygote never starts a thread, so forking it is safe.

A worker runs one evalscope `run_task` for one dataset, in its own session:

- its event stream carries framed JSON messages to the parent: {"type": "ready"}, {"type": "progress",
  "done", "total"}, {"type": "log", "level", "message"}, and finally {"type": "done"} or {"type": "error"};
- its stdin carries one framed JSON message from the parent, {"task": <TaskConfig kwargs>, "log_file",
  "hf_cache", "secrets" (masked in its events and in every log record it writes, see _secrets.py)}, then
  stays open as its lifeline: end of file (the parent went away) ends the worker at once.

Everything else a worker prints (evalscope's console logs, tqdm bars, library warnings, forked
scoring children) goes to `log_file`, never to the parent's terminal.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import sys
import time
import traceback
from typing import Any

from .._proc import Channel, encode, watch_lifeline
from ._secrets import mask, mask_event

_MESSAGE_LIMIT = 4000


class _Events:
    """The worker's event channel, secrets masked.

    evalscope forks to score samples; a forked child must neither inherit a lock another thread held
    at fork time nor talk to the parent, so children drop their events.
    """

    def __init__(self, fd: int) -> None:
        self._channel = Channel(fd, "json")
        self.secrets: tuple[str, ...] = ()
        os.register_at_fork(after_in_child=self._channel.reset_after_fork)

    def send(self, event: dict[str, Any]) -> None:
        if self._channel.fd < 0:
            return
        self._channel.send(mask_event(event, self.secrets))


_EVENTS: _Events | None = None
"""The worker's event stream (set in the forked worker; the zygote has none)."""

_IN_FLIGHT: Any = None
"""The run's bound on model requests in flight (`eval_batch_size`): a semaphore the zygote creates before
it forks, so every dataset's worker shares it. None: no bound beyond evalscope's own thread pool."""


def _send(event: dict[str, Any]) -> None:
    if _EVENTS is not None:
        _EVENTS.send(event)


class _LogRelay(logging.Handler):
    """Forwards evalscope's log records to the parent as events."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.levelno >= logging.ERROR and "\nTraceback" in message:
                message = message.split("\nTraceback", 1)[0]
            if len(message) > _MESSAGE_LIMIT:
                message = message[:_MESSAGE_LIMIT] + " ..."
            _send({"type": "log", "level": record.levelname, "message": message})
        except Exception:  # a relay failure must never break the evaluation
            pass


def _patch_progress() -> None:
    """Report the per-sample progress bar (the one evalscope tracks) as progress events.

    evalscope's TqdmLogging marks exactly that bar with `track_progress=True`; its total is the real
    sample count after loading (cached samples included), unlike progress.json's up-front estimate.
    Bars also stop drawing: nobody reads them in a log file, evalscope's periodic log lines remain.
    """
    from evalscope.utils.tqdm_utils import TqdmLogging

    init, update, close = TqdmLogging.__init__, TqdmLogging.update, TqdmLogging.close
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def send(bar: Any, force: bool) -> None:
        now = time.monotonic()
        if force or now - getattr(bar, "_evalsvc_sent", 0.0) >= 0.2 or bar.n >= (bar.total or 0):
            bar._evalsvc_sent = now
            _send({"type": "progress", "done": int(bar.n), "total": int(bar.total or 0)})

    def patched_init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("file", devnull)
        init(self, *args, **kwargs)
        if getattr(self, "track_progress", False):
            send(self, True)

    def patched_update(self: Any, n: float | None = 1) -> Any:
        result = update(self, n)
        if getattr(self, "track_progress", False):
            send(self, False)
        return result

    def patched_close(self: Any) -> None:
        if getattr(self, "track_progress", False) and not getattr(self, "_evalsvc_closed", False):
            self._evalsvc_closed = True
            send(self, True)
        close(self)

    TqdmLogging.__init__ = patched_init
    TqdmLogging.update = patched_update
    TqdmLogging.close = patched_close


def _bound_requests(api_url: str) -> None:
    """Hold one permit of the run's semaphore around each request to the evaluated endpoint.

    evalscope runs `eval_batch_size` threads per dataset, each calling the model's `generate` (one
    request, with its retries); datasets run in parallel workers. The permit makes `eval_batch_size` the
    run's total requests in flight. Requests to other endpoints (an LLM judge) are not counted.
    """
    from evalscope.models.openai_compatible import OpenAICompatibleAPI

    semaphore = _IN_FLIGHT
    if semaphore is None:
        return
    generate = OpenAICompatibleAPI.generate
    base = api_url.rstrip("/")

    def bounded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if str(getattr(self, "base_url", "") or "").rstrip("/") != base:
            return generate(self, *args, **kwargs)
        with semaphore:
            return generate(self, *args, **kwargs)

    OpenAICompatibleAPI.generate = bounded


def _patch_sample_errors() -> None:
    """Report each sample that fails (after its retries) with its subset and id, not only in a log line.

    evalscope logs "Processing item in subset=... failed" without the sample, and leaves the failed
    sample out of its predictions; the worker sends {"type": "sample_error", "subset", "id", "error"}."""
    from evalscope.evaluator.evaluator import DefaultEvaluator

    process = DefaultEvaluator._process_work_item

    def patched(self: Any, item: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return process(self, item, *args, **kwargs)
        except Exception as exc:
            sample, state = getattr(item, "sample", None), getattr(item, "task_state", None)
            sample_id = getattr(sample, "id", None) if sample is not None else getattr(state, "sample_id", None)
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            _send({"type": "sample_error", "subset": str(getattr(item, "subset", "")),
                   "id": sample_id if isinstance(sample_id, (int, str)) else None, "error": reason[:500]})
            raise

    DefaultEvaluator._process_work_item = patched


def _vary_seed_per_repeat(base: int) -> None:
    """Send repeat r of a sample with seed base + r, so repeats at temperature > 0 differ, reproducibly.

    evalscope gives every repeat the same generation config (the same seed, or none); it numbers a
    sample's repeats sample.id % repeats. The seed is set only for the model's own answers: the judge's
    requests are made while scoring, outside run_inference.
    """
    import threading

    from evalscope.api.benchmark.adapters.default_data_adapter import DefaultDataAdapter
    from evalscope.api.model.model import Model

    local = threading.local()
    run_inference, preprocess = DefaultDataAdapter.run_inference, Model._preprocess_input

    def patched_run_inference(self: Any, model: Any, sample: Any, *args: Any, **kwargs: Any) -> Any:
        repeats = int(getattr(self, "repeats", 1) or 1)
        local.index = int(sample.id) % repeats if repeats > 1 and isinstance(sample.id, int) else None
        try:
            return run_inference(self, model, sample, *args, **kwargs)
        finally:
            local.index = None

    def patched_preprocess(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = preprocess(self, *args, **kwargs)
        index = getattr(local, "index", None)
        if index is not None:
            out[3].seed = base + index
        return out

    DefaultDataAdapter.run_inference = patched_run_inference
    Model._preprocess_input = patched_preprocess


def _bound_judge(concurrency: int) -> None:
    """At most `concurrency` judge requests in flight (evalscope judges inside each sample's thread)."""
    import threading

    from evalscope.metrics.judge.llm_judge import LLMJudge

    gate = threading.BoundedSemaphore(concurrency)
    generate = LLMJudge.generate

    def patched_generate(self: Any, *args: Any, **kwargs: Any) -> Any:
        with gate:
            return generate(self, *args, **kwargs)

    LLMJudge.generate = patched_generate


def _apply_options(options: dict[str, Any]) -> None:
    """evalsvc's own per-run settings that evalscope has no option for (the worker is forked per dataset)."""
    if options.get("repeat_seed") is not None:
        _vary_seed_per_repeat(int(options["repeat_seed"]))
    if options.get("judge_concurrency"):
        _bound_judge(int(options["judge_concurrency"]))
    if options.get("judge_url"):
        from .._net import exempt_if_direct

        exempt_if_direct(str(options["judge_url"]))


def _no_html_report(*_: Any, **__: Any) -> str:
    return "not rendered by evalsvc (the report JSON is in reports/<model>/)"


def _warm_up() -> None:
    """Import and prepare evalscope once, in the zygote, before any fork."""
    import evalscope
    import evalscope.models.openai_compatible
    import evalscope.report
    import evalscope.run

    evalscope_logger = logging.getLogger("evalscope")
    for handler in list(evalscope_logger.handlers):
        if not isinstance(handler, logging.FileHandler):
            evalscope_logger.removeHandler(handler)  # eval_log.log and the relay carry it instead
    relay = _LogRelay()
    relay.setLevel(logging.INFO)
    evalscope_logger.addHandler(relay)
    _patch_progress()
    _patch_sample_errors()
    # evalscope renders an HTML page of each run's reports at the end: 0.5-2 s per worker, for a page
    # of one dataset. The report JSON it renders from stays; evalsvc writes report.md over all datasets.
    evalscope.report.gen_html_report_file = _no_html_report


# --- the worker ----------------------------------------------------------------------------------


def _mask_log_records(secrets: tuple[str, ...]) -> None:
    """Mask secrets in every log record this process creates, before any handler sees it.

    evalscope attaches its own FileHandler (eval_log.log) during run_task and the root logger writes
    to worker.log: masking at record creation covers both, and the relay, whatever handlers come later.
    """
    if not secrets:
        return
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: logging reports it itself
            return record
        masked = mask(message, secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatters use exc_text when it is set instead of formatting the traceback themselves.
            record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"), secrets)
        return record

    logging.setLogRecordFactory(factory)


def _redirect_output(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _serve() -> None:
    """The worker: fds 0, 1, 2 are its stdin, event stream and stderr. Never returns."""
    global _EVENTS
    _EVENTS = _Events(os.dup(1))
    os.dup2(2, 1)  # stray prints must not corrupt the event stream
    # The parent's pipe moves to a private fd read raw by a thread; fd 0 becomes /dev/null, so
    # multiprocessing's children (which close sys.stdin) never touch a lock that thread holds.
    control = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _send({"type": "ready", "pid": os.getpid()})

    try:  # the channel reads the raw fd (no Python file object: its lock would be inherited by forks)
        spec = Channel(control, "json").recv()
    except (EOFError, OSError):
        os._exit(0)
    task: dict[str, Any] = spec["task"]
    secrets = tuple(str(s) for s in spec.get("secrets") or ())
    _EVENTS.secrets = secrets
    _mask_log_records(secrets)
    # the parent closing our stdin (it exited, crashed or was killed) ends the worker at once
    watch_lifeline(control, lambda: os._exit(3), name="evalsvc-parent-watch")
    _redirect_output(spec["log_file"])

    code = 0
    try:
        if spec.get("hf_cache"):
            # datasets caches a local copy under its folder name and config only, so two copies named
            # 'iquiz' would share (stale) cache entries: each local copy gets its own cache folder.
            import datasets

            datasets.config.HF_DATASETS_CACHE = spec["hf_cache"]
        from evalscope import TaskConfig, run_task

        from .._net import exempt_if_direct

        exempt_if_direct(str(task.get("api_url") or ""))  # evalscope's client then proxies as the preflight did
        _bound_requests(str(task.get("api_url") or ""))
        _apply_options(spec.get("options") or {})

        generation = dict(task.pop("generation_config"))
        retry_interval = generation.pop("retry_interval", None)
        for args in (task.get("dataset_args") or {}).values():
            if isinstance(args.get("primary_metric"), dict):  # a selector (name + aggregation), see _plan.py
                from evalscope.api.metric.semantics import MetricSelector

                args["primary_metric"] = MetricSelector(**args["primary_metric"])
        cfg = TaskConfig(**task, generation_config=generation)
        if retry_interval is not None:
            # evalscope declares the interval as an int; fractions of a second work the same in
            # time.sleep, and it is a transport setting left out of the cache identity.
            cfg.generation_config.retry_interval = retry_interval
        run_task(cfg)
        _send({"type": "done"})
    except BaseException as exc:
        code = 1
        detail = str(exc).strip().splitlines()
        trace = mask(traceback.format_exc(), secrets)
        _send({
            "type": "error",
            "error": f"{type(exc).__name__}: {detail[0] if detail else ''}".rstrip(": "),
            "traceback": trace[-_MESSAGE_LIMIT:],
        })
        sys.stderr.write(trace)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    # Skip interpreter shutdown: evalscope leaves non-daemon threads (tqdm monitor, pools) behind.
    os._exit(code)


# --- the zygote ----------------------------------------------------------------------------------


def _fork_worker(fds: list[int], zygote_fds: list[int]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in zygote_fds:  # the zygote's socket and wake-up pipe are not the worker's
                os.close(fd)
            os.setsid()  # its own session: the parent signals it (and what it forks) as a group
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            _serve()
        finally:
            os._exit(4)
    for fd in fds:
        os.close(fd)
    return pid


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.sendall(encode({"exit": pid, "code": os.waitstatus_to_exitcode(status)}))


def zygote(control_fd: int, in_flight: int = 0) -> None:
    """Import evalscope, say ready, then fork one worker per request until the control socket closes.

    `in_flight` > 0: the run's bound on requests in flight, shared by every worker (see _bound_requests).
    """
    global _IN_FLIGHT
    sock = socket.socket(fileno=control_fd)
    if int(in_flight) > 0:
        import multiprocessing

        # A fork-context semaphore is unlinked at once (no resource tracker, no thread): the workers
        # forked below inherit it, and it goes away with the last of them. A worker killed while a request
        # holds a permit (SIGKILL, OOM) does not give it back: the run then has one request in flight less.
        _IN_FLIGHT = multiprocessing.get_context("fork").BoundedSemaphore(int(in_flight))
    try:
        _warm_up()
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake select through the fd
    os.write(1, json.dumps({"type": "ready", "pid": os.getpid()}).encode() + b"\n")
    try:
        while True:
            readable, _, _ = select.select([sock.fileno(), wake_r], [], [])
            if wake_r in readable:
                os.read(wake_r, 512)
            _reap(sock)
            if sock.fileno() in readable:
                message, fds, _, _ = socket.recv_fds(sock, 64, 3)
                if not message:
                    break  # the parent is done (or gone)
                pid = _fork_worker(list(fds), [sock.fileno(), wake_r, wake_w])
                sock.sendall(encode({"pid": pid}))
    except OSError:
        pass  # the parent went away mid-message
    os._exit(0)

