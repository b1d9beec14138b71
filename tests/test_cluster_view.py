"""The cluster document's pure part: who holds a GPU, named or counted (no Prometheus needed)."""

from __future__ import annotations

from jupyter_gpu_panel.cluster.promql import KERNEL_MEMORY
from jupyter_gpu_panel.cluster.view import Reading, cluster_view, reading

GiB = 1024**3


def held(kernel: str, user: str, gib: int, gpu: str = "0") -> Reading:
    labels = {"Hostname": "node-a", "gpu": gpu, "kernel_id": kernel, "user": user, "notebook": f"{kernel}.ipynb"}
    return reading(KERNEL_MEMORY, labels, gib * GiB)


SAMPLES = [
    held("k1", "bob", 4),
    held("k2", "bob", 2),
    held("k3", "carol", 1),
    held("k4", "", 1),  # a kernel whose user was not labelled: a user of its own
    held("k5", "alice", 8),
]


def gpu0(doc: dict) -> dict:
    (node,) = doc["nodes"]
    (g,) = node["gpus"]
    return g


def test_other_users_are_counted_by_user_not_by_kernel():
    g = gpu0(cluster_view(SAMPLES, [], now=0.0, me="alice", show_users=False, stale_after=60))
    assert [h["kernel_id"] for h in g["holders"]] == ["k5"]  # only mine is named
    assert g["others"] == {"count": 4, "users": 3, "memory": 8 * GiB}


def test_a_deployment_that_shows_users_names_every_holder():
    g = gpu0(cluster_view(SAMPLES, [], now=0.0, me="alice", show_users=True, stale_after=60))
    assert sorted(h["kernel_id"] for h in g["holders"]) == ["k1", "k2", "k3", "k4", "k5"]
    assert g["others"] == {"count": 0, "users": 0, "memory": 0}
