"""Property-based fuzzing of the HTTP service with schemathesis, driven by its own /openapi.json.

Starts `run_service` on 127.0.0.1 (a free port, a temporary outputs root, a bearer token, stand-in engines
from tests/_jobfakes.py so that valid bodies run real jobs without a model server), runs
`schemathesis run` with every check except positive_data_acceptance (cross-field rules such as "the
sweep lists must pair up" are enforced by core but cannot all be said in JSON Schema), and prints:

    requests sent, responses by status class, 5xx count, generated test cases, failures by check.

    python benchmarks/fuzz_service.py                 # 100 examples per operation
    python benchmarks/fuzz_service.py -n 10 --phases examples,fuzzing --json   # tests/http/test_fuzz.py
    python benchmarks/fuzz_service.py --real-engines  # the real perf and eval engines behind the service

Exit status 0 when no check failed and no 5xx was answered.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.http._live import service_process  # noqa: E402

TOKEN = "fuzz-token"
CHECKS_EXCLUDED = ("positive_data_acceptance",)
# run by service_process, which fills in PORT and OUTPUTS
SERVICE = f"""
from evalsvc.http import run_service
run_service("127.0.0.1", PORT, outputs=OUTPUTS, token={TOKEN!r}, max_queued=16, cancel_grace_s=5,
            targets=TARGETS)
"""


FAKE_TARGETS = {"perf": "tests._jobfakes:perf", "eval": "tests._jobfakes:eval", "capacity": "tests._jobfakes:capacity"}


def run_fuzz(max_examples: int, seed: int, max_time: float | None = None, phases: str | None = None,
             real_engines: bool = False) -> dict[str, Any]:
    """Run schemathesis against a fresh service (stand-in engines, or the real ones); return the figures."""
    with tempfile.TemporaryDirectory(prefix="evalsvc-fuzz-") as tmp:
        tmp_path = Path(tmp)
        script = f"TARGETS = {{}}\n{SERVICE}" if real_engines else f"TARGETS = {FAKE_TARGETS!r}\n{SERVICE}"
        with service_process(tmp_path / "out", script=script, token=TOKEN) as live:
            har = tmp_path / "run.har"
            cmd = ["schemathesis", "run", f"{live.base_url}/openapi.json", "--checks", "all",
                   "--exclude-checks", ",".join(CHECKS_EXCLUDED), "-n", str(max_examples), "--seed", str(seed),
                   "-H", f"Authorization: Bearer {TOKEN}", "--no-color", "--generation-database", "none",
                   "--request-timeout", "60", "--report", "har", "--report-har-path", str(har),
                   "--continue-on-failure", "--max-response-time", "300"]  # blocking calls wait for jobs
            if max_time:
                cmd += ["--max-time", str(int(max_time))]
            if phases:
                cmd += ["--phases", phases]
            t0 = time.monotonic()
            run = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True,
                                 env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})
            elapsed = time.monotonic() - t0
            statuses: collections.Counter[int] = collections.Counter()
            if har.exists():
                for entry in json.loads(har.read_text())["log"]["entries"]:
                    statuses[int(entry["response"]["status"])] += 1
            generated = re.search(r"(\d+) generated", run.stdout)
            failures = dict(re.findall(r"❌ (ST\d+ [^:\n]+): (\d+)", run.stdout))
        # read once the service has stopped, so that everything it logged is in the file
        internal = live.stderr_path.read_text(errors="replace").count("internal error on")
    by_class = collections.Counter(f"{s // 100}xx" for s in statuses.elements())
    return {
        "requests": sum(statuses.values()),
        "generated_cases": int(generated.group(1)) if generated else None,
        "by_class": dict(sorted(by_class.items())),
        "by_status": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        # 502: the endpoint under test could not be used (documented); with the real engines every generated
        # url is such an endpoint, so only 500 (and undocumented 5xx) mean a bug in the service
        "internal_server_errors": sum(v for k, v in statuses.items() if k >= 500 and k not in (502, 503, 504)),
        "engines": "real" if real_engines else "stand-ins",
        "internal_errors_logged": internal,
        "failures": {k: int(v) for k, v in failures.items()},
        "schemathesis_exit": run.returncode,
        "elapsed_s": round(elapsed, 1),
        "max_examples": max_examples,
        "seed": seed,
        "phases": phases or "all",
        "output_tail": run.stdout[-4000:] if run.returncode else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--max-examples", type=int, default=100, help="examples per API operation")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--max-time", type=float, default=None, help="time budget in seconds")
    parser.add_argument("--phases", default=None, help="schemathesis phases (default: all: examples, coverage, "
                                                       "fuzzing, stateful)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--real-engines", action="store_true",
                        help="run valid bodies with the real perf and eval engines instead of tests/_jobfakes.py "
                             "(targets are whatever schemathesis generates: unreachable hosts, refused ports)")
    args = parser.parse_args()
    figures = run_fuzz(args.max_examples, args.seed, args.max_time, args.phases, args.real_engines)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"schemathesis against /openapi.json: {figures['generated_cases']} generated test cases, "
              f"{figures['requests']} requests in {figures['elapsed_s']} s (seed {figures['seed']}, "
              f"-n {figures['max_examples']}, phases {figures['phases']})")
        print(f"responses by class: {figures['by_class']}")
        print(f"responses by status: {figures['by_status']}")
        print(f"5xx answers: {figures['server_errors']} (500 and other undocumented: "
              f"{figures['internal_server_errors']}); internal errors logged: {figures['internal_errors_logged']}")
        print(f"check failures: {figures['failures'] or 'none'}")
        if figures["output_tail"]:
            print(figures["output_tail"])
    bad = figures["internal_server_errors"] if args.real_engines else figures["server_errors"]
    ok = figures["schemathesis_exit"] == 0 and bad == 0 and figures["requests"] > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
