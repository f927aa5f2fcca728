"""What Ray's TLS between nodes costs: the local multi-node cluster (loadtests/local_cluster.py:
the KubeRay manifest's node groups and serve config, token authentication on) started
with TLS and without it by turns, and wrk posting the model's PNG to ``/infer/file`` at
each concurrency. Every call between deployments crosses nodes (ingress and audit on the
head, preprocessing and the model on the workers), so each request takes several TLS
hops.

    python -m loadtests.cluster_bench --runs tls,plain,plain,tls --concurrency 8,32

Prints raw in-process ONNX Runtime throughput, then req/s, its ratio to raw, p50/p99 and
errors per run, and at the end each concurrency's mean TLS/plain throughput ratio. Stop
any ``medai serve`` first: the runs record into this machine's data directory.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path

from loadtests.bench import DEMO_VERSIONS, raw_throughput, wrk, wrk_script
from loadtests.local_cluster import deploy_manifest, local_cluster, this_machines_app_args
from medai_cli.common import config_settings, local_token
from serve_app.catalog.store import ModelStore
from serve_app.settings import REPO_ROOT

MODEL = "chest-xray-demo"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", default="tls,plain,plain,tls", help="tls or plain, in turn")
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--duration", type=int, default=15, help="seconds per concurrency")
    parser.add_argument("--workers", type=int, default=2, help="worker nodes")
    args = parser.parse_args()
    runs = args.runs.split(",")
    if set(runs) - {"tls", "plain"}:
        parser.error("--runs: tls or plain, comma-separated")
    concurrencies = [int(c) for c in args.concurrency.split(",")]

    app_args = this_machines_app_args()
    settings = config_settings(REPO_ROOT / "serve_config.yaml")
    store = ModelStore(settings.model_store)
    spec = store.resolve(MODEL, DEMO_VERSIONS[MODEL])  # not a load run's newer copy
    best_batch, raw = raw_throughput(store, spec, seconds=3)
    print(f"raw onnxruntime best: {raw:.1f} img/s at batch {best_batch}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="medai-cluster-bench-"))
    token = local_token(settings, "bench", "clinician", ttl_s=12 * 3600)
    script = wrk_script(workdir, "file", spec, MODEL, token)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the nodes go too

    rps: dict[tuple[str, int], list[float]] = {}
    for i, run in enumerate(runs):
        logs = workdir / f"run-{i}-{run}"
        with local_cluster(logs, workers=args.workers, tls=run == "tls"):
            base_url = deploy_manifest(app_args)
            wrk(f"{base_url}/infer/file", script, 8, 3)  # warm-up
            for c in concurrencies:
                r = wrk(f"{base_url}/infer/file", script, c, args.duration)
                rps.setdefault((run, c), []).append(r["rps"])
                print(
                    f"  {run:5} c={c:<3} {r['rps']:8.1f} req/s  ratio {r['rps'] / raw:5.3f}  "
                    f"p50 {r['p50_us'] / 1000:7.1f} ms  p99 {r['p99_us'] / 1000:7.1f} ms  "
                    f"errors {r['errors'] + r['non_2xx']}",
                    flush=True,
                )
    print(f"\n{os.cpu_count()} CPUs, {args.workers} worker nodes, {spec.ref} via /infer/file")
    for c in concurrencies:
        tls, plain = rps.get(("tls", c)), rps.get(("plain", c))
        if tls and plain:
            ratio = statistics.mean(tls) / statistics.mean(plain)
            runs_rps = (
                " ".join(f"{x:.1f}" for x in tls) + " / " + " ".join(f"{x:.1f}" for x in plain)
            )
            print(f"  c={c:<3} TLS / plain throughput {ratio:.3f} (req/s: {runs_rps})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
