"""A small local Ray cluster for tests and benchmarks: several nodes on this machine, 127.0.0.1 only.

    with local_cluster(nodes=3) as cluster:
        run_perf(PerfConfig(..., ray_address=cluster.address, workers=3))

Each node has its own resources (`num_cpus` each, a small object store, no dashboard); the head's port
is a free ephemeral one and the workers take OS-assigned ports, so nothing lands in Ray's default worker
range (10002-19999) that other processes on a shared machine may use. This process is connected as the
driver (`ray.init(address=...)`), so `run_perf(..., ray_address=...)` in it uses that connection.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

OBJECT_STORE_BYTES = 80 * 1024 * 1024
# Ray rewrites a loopback address to this machine's outward IP (firewalled here) unless it believes it runs
# without clusters: set before Ray is imported, inherited by the nodes this process starts
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_args(num_cpus: int, **extra: Any) -> dict[str, Any]:
    return {"num_cpus": num_cpus, "object_store_memory": OBJECT_STORE_BYTES, "include_dashboard": False,
            "node_ip_address": "127.0.0.1", "min_worker_port": 0, "max_worker_port": 0,
            "dashboard_agent_listen_port": _free_port(), "metrics_export_port": _free_port(),
            "runtime_env_agent_port": _free_port(), "metrics_agent_port": _free_port(), **extra}


@contextmanager
def local_cluster(nodes: int = 3, num_cpus: int = 1) -> Iterator[Any]:
    """A `ray.cluster_utils.Cluster` of `nodes` nodes, this process connected to it; shut down on exit."""
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    ray_constants.ENABLE_RAY_CLUSTER = False  # as the variable above says, in case Ray was imported before it

    cluster = Cluster(initialize_head=True, head_node_args=_node_args(num_cpus, gcs_server_port=_free_port()))
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**_node_args(num_cpus))
        cluster.wait_for_nodes()
        # Ray's own stderr handler would outlive pytest's captured streams: its INFO lines are not wanted here
        ray.init(address=cluster.address, log_to_driver=False, include_dashboard=False, configure_logging=False,
                 logging_level=logging.WARNING)
        try:
            yield cluster
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()
