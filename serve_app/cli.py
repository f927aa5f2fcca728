"""``medai``: the command line for operators and ML engineers."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from serve_app.settings import REPO_ROOT, Settings

HIGH_THROUGHPUT_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
"""Ray Serve's HAProxy ingress + throughput-optimized mode (see README, "Serving modes")."""


def build_demo_models(settings: Settings, include_on_demand: bool = False) -> list[str]:
    """Build and register the demo models missing from the store; return their refs."""
    from serve_app.demo_models import DEMO_MODELS
    from serve_app.registry.store import ModelStore
    from serve_app.runtime.onnx_model import inspect_model

    store = ModelStore(settings.model_store)
    have = {s.ref for s in store.specs() if store.blob_path(s.sha256).exists()}
    built = []
    for demo in DEMO_MODELS:
        ref = f"{demo.name}:{demo.version}"
        if ref in have or (demo.on_demand and not include_on_demand):
            continue
        data = demo.build()
        store.add(data, inspect_model(data, demo.name, demo.version))
        built.append(ref)
    return built


def cmd_build_demo(args: argparse.Namespace) -> int:
    settings = Settings()
    built = build_demo_models(settings, include_on_demand=args.bench)
    print(
        f"built {', '.join(built)}" if built else "demo models already present",
        f"in {settings.model_store}",
    )
    return 0


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `serve run` shuts Serve and its Ray instance down on this


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings()
    build_demo_models(settings)
    if args.high_throughput:
        os.environ.update(HIGH_THROUGHPUT_ENV)  # NOTE: before Ray is imported or started
    from ray.serve.scripts import cli as serve_cli

    print(
        f"MedAI Flow: serving {args.config} on http://127.0.0.1:8000 "
        "(ready when GET /readyz answers 200). Try:\n"
        "  curl -s http://127.0.0.1:8000/readyz\n"
        "  curl -s -F file=@image.png http://127.0.0.1:8000/infer/file",
        flush=True,
    )
    # NOTE: Ctrl-C and SIGTERM (systemd, docker stop) both stop cleanly; a background
    # shell would otherwise start us with SIGINT ignored.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    return serve_cli.main(["run", str(args.config)], prog_name="serve", standalone_mode=False) or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medai", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="model store").add_subparsers(
        dest="action", required=True
    )
    build = models.add_parser("build-demo", help="build the demo models into the store")
    build.add_argument("--bench", action="store_true", help="also the ResNet-50 benchmark model")
    build.set_defaults(func=cmd_build_demo)

    serve = sub.add_parser("serve", help="build demo models if absent, then `serve run` locally")
    serve.add_argument("--config", type=Path, default=REPO_ROOT / "serve_config.yaml")
    serve.add_argument(
        "--high-throughput",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Ray Serve's HAProxy + throughput-optimized mode (default on)",
    )
    serve.set_defaults(func=cmd_serve)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
