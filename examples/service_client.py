"""Call a running `evalsvc service` from Python: a blocking perf request, then the same as a job.

    evalsvc mock --port 8000 &
    evalsvc service --port 9000 &
    python examples/service_client.py --service http://127.0.0.1:9000 --url http://127.0.0.1:8000/v1/chat/completions
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request


def call(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:  # blocking endpoints answer when done
        return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", default="http://127.0.0.1:9000")
    parser.add_argument("--url", default="http://127.0.0.1:8000/v1/chat/completions")
    parser.add_argument("--model", default="mock-model")
    args = parser.parse_args()

    body = {"model": args.model, "url": args.url, "api": "openai", "dataset": "random", "number": 20,
            "parallel": 4, "max_tokens": 32}
    answer = call("POST", f"{args.service}/api/v1/perf", body)
    for key, run in answer["results"].items():
        print(key, "ttft p50 ms:", run["percentiles"]["ttft_ms"]["p50"])

    job_id = call("POST", f"{args.service}/api/v1/jobs/perf", body)["job_id"]  # 202 at once
    while True:
        job = call("GET", f"{args.service}/api/v1/jobs/{job_id}")["job"]
        if job["state"] not in ("queued", "running"):
            break
        time.sleep(0.5)
    print("job", job_id, job["state"])
    if job["state"] == "completed":
        result = call("GET", f"{args.service}/api/v1/jobs/{job_id}/result")
        print("output_dir:", result["output_dir"])


if __name__ == "__main__":
    main()
