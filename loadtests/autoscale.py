"""Watch autoscaling: drive a running server up and down with Locust and record each
deployment's replicas over time, from Ray Serve's own state.

    .venv/bin/medai serve &                      # on this machine (the script joins its Ray)
    python -m loadtests.autoscale --steps 2:30,32:90,0:120 --out loadtests/results/autoscale

    # or across nodes: a local head and two worker nodes (loadtests/local_cluster.py),
    # the KubeRay manifest's serve config deployed on them, all taken down after
    python -m loadtests.autoscale --multi-node 2 --out loadtests/results/autoscale-multi-node

Writes, into ``--out``: ``replicas.csv`` (second, users, replicas per deployment),
``replicas.png`` (the same, plotted), Locust's ``report.html``, CSV statistics and log, and
prints each deployment's fewest and most replicas (and, across nodes, on how many nodes),
whether it scaled up under load and back down after, and Locust's failure count. A
script, not a test: how far and how fast replicas move depends on the machine and on the
configuration's autoscaling bounds.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw

from loadtests.local_cluster import (
    deploy_manifest,
    local_cluster,
    replica_nodes,
    this_machines_app_args,
)
from loadtests.steps import parse_steps, users_at

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def running_replicas(app: str) -> dict[str, int]:
    """RUNNING replicas of each deployment of ``app``, as Serve's controller reports them."""
    from ray import serve
    from ray.serve._private.common import ReplicaState

    status = serve.status().applications[app]
    return {
        name: deployment.replica_states.get(ReplicaState.RUNNING, 0)
        for name, deployment in status.deployments.items()
    }


@contextlib.contextmanager
def server(args: argparse.Namespace) -> Iterator[str]:
    """The base URL of the server under load, this process joined to its Ray: the running
    one at ``--url``, or, with ``--multi-node``, a local cluster of our own."""
    import ray

    if not args.multi_node:
        ray.init(address=args.address, namespace="serve", log_to_driver=False)
        yield args.url
        return
    app_args = this_machines_app_args()
    # NOTE: a SIGTERM unwinds like Ctrl-C, so the cluster's nodes are taken down too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with local_cluster(args.out / "cluster-logs", workers=args.multi_node):
        yield deploy_manifest(app_args)


def plot(rows: list[dict[str, float]], deployments: list[str], path: Path) -> None:
    """Replicas per deployment (left axis) and Locust users (grey, right axis) over time."""
    width, height, margin = 900, 420, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    span_s = max(r["second"] for r in rows) or 1.0
    most_replicas = max(max(r[d] for d in deployments) for r in rows) or 1
    most_users = max(r["users"] for r in rows) or 1

    def x(second: float) -> float:
        return margin + (width - 2 * margin) * second / span_s

    def y(value: float, top: float) -> float:
        return height - margin - (height - 2 * margin) * value / (top * 1.1)

    draw.rectangle([margin, margin, width - margin, height - margin], outline="black")
    for level in range(int(most_replicas) + 1):
        draw.text((margin - 20, y(level, most_replicas) - 6), str(level), fill="black")
    draw.text((width - margin + 5, y(most_users, most_users) - 6), str(int(most_users)), "grey")
    draw.text((width // 2 - 40, height - margin + 15), f"seconds (0-{span_s:.0f})", "black")
    series = [("users", "grey", most_users)] + [
        (d, COLOURS[i % len(COLOURS)], most_replicas) for i, d in enumerate(deployments)
    ]
    for i, (name, colour, top) in enumerate(series):
        points = [(x(r["second"]), y(r[name], top)) for r in rows]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        draw.text((margin + 5 + 150 * (i % 5), 8 + 14 * (i // 5)), name, fill=colour)
    image.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--steps", default="2:30,32:90,0:120", help="users:seconds, in turn")
    parser.add_argument("--app", default="medai")
    parser.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS", "auto"),
        help="the server's Ray (GCS address); `auto` finds the one Ray instance on this host",
    )
    parser.add_argument(
        "--multi-node",
        type=int,
        default=0,
        metavar="WORKERS",
        help="start a local cluster of a head and WORKERS worker nodes, deploy the KubeRay "
        "manifest's serve config on it (instead of using --url), and take it down after",
    )
    parser.add_argument("--out", type=Path, default=Path("loadtests/results/autoscale"))
    args = parser.parse_args()
    steps = parse_steps(args.steps)  # a clear error before anything starts
    args.out.mkdir(parents=True, exist_ok=True)
    with server(args) as url:
        return watch(args, url, steps)


def watch(args: argparse.Namespace, url: str, steps: list[tuple[int, float]]) -> int:
    """Run Locust's steps against ``url`` and record replicas each second until it ends."""
    run = ["--headless", "--host", url, "--only-summary", "ClinicalClient"]
    reports = ["--csv", str(args.out / "locust"), "--html", str(args.out / "report.html")]
    locust = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            "loadtests/locustfile.py",
            *run,
            *reports,
        ],
        env=os.environ | {"MEDAI_LOAD_STEPS": args.steps},
        stdout=subprocess.DEVNULL,
        stderr=(args.out / "locust.log").open("wb"),
    )
    rows: list[dict[str, float]] = []
    started = time.monotonic()
    while locust.poll() is None or not rows:
        second = time.monotonic() - started
        replicas = running_replicas(args.app)
        row = {"second": second, "users": users_at(steps, second) or 0, **replicas}
        if args.multi_node:
            row |= {f"{d} nodes": len(n) for d, n in replica_nodes(args.app).items()}
        rows.append(row)
        time.sleep(1.0)
    columns = sorted({k for row in rows for k in row} - {"second", "users"})
    deployments = [c for c in columns if not c.endswith(" nodes")]
    for row in rows:
        for name in columns:
            row.setdefault(name, 0)
    with open(args.out / "replicas.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["second", "users", *columns])
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, deployments, args.out / "replicas.png")

    with open(args.out / "locust_stats.csv") as f:
        total = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    print(f"{args.out}: replicas.csv, replicas.png, report.html")
    print(f"requests {total['Request Count']}, failures {total['Failure Count']}")
    peak_at = max(range(len(rows)), key=lambda i: rows[i]["users"])  # the peak's first second
    for name in deployments:
        counts = [row[name] for row in rows]
        up = max(counts[peak_at:]) > counts[peak_at]
        down = counts[-1] < max(counts[peak_at:])
        spread = ""
        if args.multi_node:
            spread = f", on up to {max(row[f'{name} nodes'] for row in rows):.0f} node(s)"
        print(
            f"  {name:28s} replicas {min(counts):.0f}..{max(counts):.0f}{spread}  "
            f"scaled up {'yes' if up else 'no'}, back down {'yes' if down else 'no'}"
        )
    return 0 if locust.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
