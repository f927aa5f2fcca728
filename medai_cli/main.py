"""``medai``: the command line for operators and ML engineers."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from medai_cli.check import add_check_command
from medai_cli.common import config_settings, local_token
from medai_cli.infer import add_infer_command
from medai_cli.models import add_model_commands, add_route_commands
from serve_app.settings import REPO_ROOT, Settings

HIGH_THROUGHPUT_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
"""Ray Serve's HAProxy ingress + throughput-optimized mode (see README, "Serving modes")."""

SERVE_ENV = {"RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5"}
"""Ray settings for serving in either mode.

NOTE: Ray Serve's controller reconciles ten times a second by default, each pass
also querying the GCS; on 2 cores, twice a second served ~9% more requests and
still reacts to autoscaling and failed replicas within a second (measured:
loadtests/README.md).
"""


OWN_HAPROXY_ENV = {"RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2"}
"""For a server whose own HAProxy is the one client of its ingress replica's port.

NOTE: a stopping ingress replica first waits this long (30 s by default) for outside load
balancers to forget its port. Here the port listens on loopback (README, "Network
exposure") and its client is the HAProxy that Serve itself reconfigures. The 30 s made
every stop outlast Serve's own 30 s wait for its controller, so the deployments after
the ingress (the audit writer among them) were killed, not stopped: the writer's close,
which signs the tail, never ran. Requests in flight still get the ingress's
``graceful_shutdown_timeout_s``.
"""


def serve_env(high_throughput: bool, haproxy_dir: Path | None = None) -> dict[str, str]:
    """The environment Ray must start with to serve as ``medai serve`` does; HAProxy's
    files in ``haproxy_dir`` (see ``haproxy_env``) when given, that HAProxy the only
    client of the ingress (``OWN_HAPROXY_ENV``)."""
    if not high_throughput:
        return dict(SERVE_ENV)
    own = haproxy_env(haproxy_dir) | OWN_HAPROXY_ENV if haproxy_dir else {}
    return SERVE_ENV | HIGH_THROUGHPUT_ENV | own


def haproxy_dir() -> Path:
    """A new directory for one server's HAProxy files (``haproxy_env``).

    NOTE: short, under ``/tmp`` whatever ``TMPDIR`` says: Ray puts the admin socket in a
    56-character node directory below it, and HAProxy refuses a socket path over 97 bytes.
    """
    return Path(tempfile.mkdtemp(prefix="mh-", dir="/tmp"))


def haproxy_env(directory: Path) -> dict[str, str]:
    """Ray's HAProxy keeps its config, admin socket and state in ``directory``.

    NOTE: Ray leaves its HAProxy running when Serve and Ray stop, holding the serving,
    stats and metrics ports; with a directory of its own, the server's HAProxy is the one
    whose command line names that config, and ``stop_haproxy`` ends it. Two servers on one
    host then never share Ray's default ``/tmp/haproxy-serve`` either.
    """
    return {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(directory / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(directory / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(directory),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(directory / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(directory / "metrics.sock"),
    }


def stop_haproxy(directory: Path) -> int:
    """Kill every HAProxy running on ``directory``'s config (``haproxy_env``); how many."""
    import psutil

    # Ray scopes the config below a directory per node (``<directory>/<node id>/``).
    inside = f"{directory}/"
    stopped = 0
    for process in psutil.process_iter(["name", "cmdline"]):
        arguments = process.info["cmdline"] or []
        if process.info["name"] == "haproxy" and any(a.startswith(inside) for a in arguments):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
                stopped += 1
    return stopped


def build_demo_models(settings: Settings, include_on_demand: bool = False) -> list[str]:
    """Build and register the demo models missing from the store; return their refs."""
    from serve_app.catalog.store import ModelStore
    from serve_app.demo_models import DEMO_MODELS
    from serve_app.runtime.examine import inspect_model

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


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``1h``, ``7d`` in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30m, 1h, 7d)") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the duration must be positive")
    return seconds


def cmd_token(args: argparse.Namespace) -> int:
    from serve_app.auth.rbac import Role
    from serve_app.auth.tokens import mint

    settings = config_settings(args.config)
    if args.role not in Role.__members__.values():
        print(f"medai token: note: role {args.role!r} is granted nothing", file=sys.stderr)
    if args.private_key is not None:
        algorithm = args.algorithm or next(a for a in settings.auth.algorithms if a != "HS256")
        ttl = args.ttl or settings.auth.token_ttl_s
        key = args.private_key.read_bytes()
        token = mint(settings.auth, key, args.sub, args.role, ttl, algorithm, kid=args.kid)
    elif settings.auth.algorithms == ["HS256"]:
        token = local_token(settings, args.sub, args.role, args.ttl)
    else:
        print("medai token: this server verifies RS256/ES256; pass --private-key", file=sys.stderr)
        return 2
    print(console_link(args.link, token) if args.link else token)
    return 0


def console_link(server: str, token: str) -> str:
    """The console's sign-in link: the token in the fragment, which browsers never send."""
    return f"{server.rstrip('/')}/ui/#token={token}"


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
    from serve_app.auth.credentials import ConfigurationError, ingress_secrets, load_credentials

    settings = config_settings(args.config)
    # NOTE: one host runs every deployment: refuse missing or development secrets now,
    # before Ray starts (in a cluster, each node's replicas refuse their own at start).
    writer = {"audit_signing_key"} if settings.audit.enabled else set()
    try:
        load_credentials(settings, need=ingress_secrets(settings) | writer)
    except ConfigurationError as refused:
        print(f"medai serve: {refused}", file=sys.stderr)
        return 2
    build_demo_models(settings)
    haproxy = haproxy_dir() if args.high_throughput else None
    for name, value in serve_env(args.high_throughput, haproxy).items():
        os.environ.setdefault(name, value)  # NOTE: before Ray is imported or started
    import ray
    from ray.serve._private.constants import SERVE_NAMESPACE
    from ray.serve.scripts import cli as serve_cli

    print(
        f"MedAI Flow: serving {args.config} on http://127.0.0.1:8000 "
        "(ready when GET /readyz answers 200). Try:\n"
        "  curl -s http://127.0.0.1:8000/readyz\n"
        "  TOKEN=$(.venv/bin/medai token --sub alice --role clinician)\n"
        '  curl -s -H "Authorization: Bearer $TOKEN" -F file=@image.png '
        "http://127.0.0.1:8000/infer/file\n"
        "Console: http://127.0.0.1:8000/ui/ (a sign-in link: "
        ".venv/bin/medai token --sub alice --role clinician --link)",
        flush=True,
    )
    try:
        # NOTE: starting Ray replaces a SIGTERM handler set before it with Ray's own, which
        # exits without stopping Serve (and Ray's crash handler aborts the process 3 s
        # in): Ray is started here as `serve run` would start it, then the handlers, and
        # `serve run` uses this Ray. Ctrl-C and SIGTERM (systemd, docker stop) both stop
        # cleanly; a background shell would otherwise start us with SIGINT ignored.
        ray.init(address=os.environ.get("RAY_ADDRESS"), namespace=SERVE_NAMESPACE)
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        run = ["run", str(args.config)]
        return serve_cli.main(run, prog_name="serve", standalone_mode=False) or 0
    finally:
        if haproxy is not None:
            stop_haproxy(haproxy)
            shutil.rmtree(haproxy, ignore_errors=True)


async def verify_trail(settings: Settings) -> dict[str, object]:
    """Recompute the stored chain and hold it to the signed checkpoints; writes nothing.

    Raises ``ConfigurationError`` when there is no database (or an unmigrated one).
    """
    from serve_app.audit.writer import ChainWriter
    from serve_app.auth.credentials import load_credentials
    from serve_app.schemas.audit import ChainVerification
    from serve_app.storage import open_database

    credentials = load_credentials(settings, need={"audit_signing_key"})
    async with await open_database(settings, migrate=False) as database:
        writer = ChainWriter.from_settings(settings, credentials, database)
        return ChainVerification.model_validate(await writer.verify()).model_dump(mode="json")


def cmd_audit_verify(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from serve_app.auth.credentials import ConfigurationError

    try:
        verification = asyncio.run(verify_trail(config_settings(args.config)))
    except ConfigurationError as error:
        print(f"medai audit verify: {error}", file=sys.stderr)
        return 2
    print(json.dumps(verification, indent=2))
    return 0 if verification["valid"] else 1


async def reanchor_trail(settings: Settings, actor: str, reason: str) -> dict[str, object]:
    """Record the operator's decision in the chain and sign over it (see ChainWriter)."""
    from dataclasses import asdict

    from serve_app.audit.writer import ChainWriter
    from serve_app.auth.credentials import load_credentials
    from serve_app.schemas.audit import ChainVerification
    from serve_app.storage import open_database

    credentials = load_credentials(settings, need={"audit_signing_key"})
    async with await open_database(settings) as database:
        writer = ChainWriter.from_settings(settings, credentials, database)
        try:
            checkpoint, found = await writer.reanchor(actor, reason)
        finally:
            await writer.close()
        return {
            "checkpoint": asdict(checkpoint),
            "verification_before": ChainVerification.model_validate(found).model_dump(mode="json"),
        }


def cmd_audit_reanchor(args: argparse.Namespace) -> int:
    import asyncio
    import getpass
    import json

    from serve_app.auth.credentials import ConfigurationError
    from serve_app.errors import MedAIError

    actor = args.actor or f"operator:{getpass.getuser()}"
    try:
        done = asyncio.run(reanchor_trail(config_settings(args.config), actor, args.reason))
    except (ConfigurationError, MedAIError, ValueError) as error:
        print(f"medai audit reanchor: {error}", file=sys.stderr)
        return 2
    print(json.dumps(done, indent=2))
    return 0


def cmd_audit_public_key(args: argparse.Namespace) -> int:
    from serve_app.audit.checkpoints import CheckpointSigner, public_key_text
    from serve_app.auth.credentials import load_credentials

    settings = config_settings(args.config)
    signer = CheckpointSigner.from_credentials(
        load_credentials(settings, need={"audit_signing_key"})
    )
    print(f"{public_key_text(signer.public_key)}  key_id {signer.key_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medai", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="model store").add_subparsers(
        dest="action", required=True
    )
    build = models.add_parser("build-demo", help="build the demo models into the store")
    build.add_argument(
        "--bench", action="store_true", help="also the ResNet-18/50 benchmark models"
    )
    build.set_defaults(func=cmd_build_demo)
    add_model_commands(models, REPO_ROOT / "serve_config.yaml")
    add_check_command(models, REPO_ROOT / "serve_config.yaml")
    routes = sub.add_parser("routes", help="A/B routes").add_subparsers(
        dest="action", required=True
    )
    add_route_commands(routes, REPO_ROOT / "serve_config.yaml")
    add_infer_command(sub, REPO_ROOT / "serve_config.yaml")

    serve = sub.add_parser("serve", help="build demo models if absent, then `serve run` locally")
    serve.add_argument("--config", type=Path, default=REPO_ROOT / "serve_config.yaml")
    serve.add_argument(
        "--high-throughput",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Ray Serve's HAProxy + throughput-optimized mode (default on)",
    )
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser(
        "token",
        help="mint a bearer token the configured server accepts (development and operations)",
    )
    token.add_argument("--sub", required=True, help="the caller's id (the `sub` claim)")
    token.add_argument("--role", required=True, help="clinician, ml_engineer, auditor or admin")
    token.add_argument("--ttl", type=parse_duration, help="lifetime, e.g. 30m, 1h, 7d")
    token.add_argument("--config", type=Path, default=REPO_ROOT / "serve_config.yaml")
    token.add_argument("--private-key", type=Path, help="PEM private key (RS256/ES256 servers)")
    token.add_argument("--algorithm", choices=["RS256", "ES256"], help="with --private-key")
    token.add_argument("--kid", help="key id header (servers verifying with a JWKS file)")
    token.add_argument(
        "--link",
        nargs="?",
        const="http://127.0.0.1:8000",
        metavar="SERVER",
        help="print a web console sign-in link instead (default server http://127.0.0.1:8000)",
    )
    token.set_defaults(func=cmd_token)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="action", required=True
    )
    verify = audit.add_parser(
        "verify", help="recompute the hash chain against the signed checkpoints (exit 1: broken)"
    )
    verify.add_argument("--config", type=Path, default=REPO_ROOT / "serve_config.yaml")
    verify.set_defaults(func=cmd_audit_verify)
    reanchor = audit.add_parser(
        "reanchor",
        help="after investigating why the writer halted: record why in the trail and sign"
        " over its head again (needs the signing key and the writer's lease)",
    )
    reanchor.add_argument("--reason", required=True, help="why, for the audit entry")
    reanchor.add_argument("--actor", help="who decided (default operator:<login>)")
    reanchor.add_argument("--config", type=Path, default=REPO_ROOT / "serve_config.yaml")
    reanchor.set_defaults(func=cmd_audit_reanchor)
    public_key = audit.add_parser(
        "public-key", help="the signing key's public half, for audit.trusted_public_keys"
    )
    public_key.add_argument("--config", type=Path, default=REPO_ROOT / "serve_config.yaml")
    public_key.set_defaults(func=cmd_audit_public_key)

    args = parser.parse_args(argv)
    return args.func(args)
