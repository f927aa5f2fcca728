"""``medai models register|list|promote|rollback`` and ``medai routes set|show|stats|delete``:
the registry API from the shell.

These talk to a running server over HTTP, as any client would, so that every change
goes through the registry deployment and lands in the audit trail. The token comes from
``--token`` or ``MEDAI_TOKEN``; without either, a development token is minted with this
machine's secret for ``--as`` (role ml_engineer).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from medai_cli.common import bearer_token

DEFAULT_URL = "http://127.0.0.1:8000"


def _request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> int:
    import httpx

    headers = {"Authorization": f"Bearer {bearer_token(args, 'ml_engineer')}"}
    try:
        response = httpx.request(
            method, args.url + path, headers=headers, timeout=args.timeout, **kwargs
        )
    except httpx.HTTPError as error:
        print(f"medai: {args.url} did not answer: {error}", file=sys.stderr)
        return 2
    try:
        body = response.json() if response.content else None
    except ValueError:  # not JSON: e.g. a proxy's error page when the server is gone
        body = None
    if response.is_success:
        if body is not None:
            print(json.dumps(body, indent=2))
        return 0
    plain = " ".join(response.text[:2000].split())  # one line, however long the page
    detail = body.get("detail") if isinstance(body, dict) else plain
    print(f"medai: {response.status_code}: {detail}", file=sys.stderr)
    return 1


def cmd_register(args: argparse.Namespace) -> int:
    fields = {
        "name": args.name,
        "version": args.version,
        "clinical_domain": args.clinical_domain,
        "fda_submission_id": args.fda_submission_id,
        "iso_certification": args.iso_certification,
    }
    data = {k: v for k, v in fields.items() if v is not None}
    with args.file.open("rb") as f:
        files = {"file": (args.file.name, f, "application/octet-stream")}
        return _request(args, "POST", "/models", data=data, files=files)


def cmd_list(args: argparse.Namespace) -> int:
    return _request(args, "GET", "/models", params={"name": args.name} if args.name else None)


def cmd_promote(args: argparse.Namespace) -> int:
    path = f"/models/{args.name}/{args.version}/promote"
    return _request(args, "POST", path, json={"to": args.to})


def cmd_rollback(args: argparse.Namespace) -> int:
    return _request(args, "POST", f"/models/{args.name}/rollback", json={"to_version": args.to})


def _arm(text: str) -> dict[str, Any]:
    model, sep, weight = text.rpartition("=")
    try:
        return {"model": model, "weight": float(weight)} if sep else {"model": text, "weight": 1}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not name:version=weight") from None


def cmd_route_set(args: argparse.Namespace) -> int:
    body = {"arms": args.arm, "shadow": args.shadow, "sticky_key": args.sticky_key}
    return _request(args, "PUT", f"/routes/{args.endpoint}", json=body)


def cmd_route_show(args: argparse.Namespace) -> int:
    return _request(args, "GET", f"/routes/{args.endpoint}" if args.endpoint else "/routes")


def cmd_route_stats(args: argparse.Namespace) -> int:
    params = {"limit": args.limit, **({"since": args.since} if args.since else {})}
    return _request(args, "GET", f"/routes/{args.endpoint}/stats", params=params)


def cmd_route_delete(args: argparse.Namespace) -> int:
    return _request(args, "DELETE", f"/routes/{args.endpoint}")


def _commands(subparsers: Any, config_default: Path) -> Any:
    """``command(name, help, func)``: a subcommand with the options every one takes."""

    def command(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help)
        parser.add_argument("--url", default=DEFAULT_URL, help="the server")
        parser.add_argument("--token", help="bearer token (default: MEDAI_TOKEN, or minted)")
        parser.add_argument("--as", dest="as_sub", default="ml-engineer", help="minted `sub`")
        parser.add_argument("--config", type=Path, default=config_default)
        parser.add_argument("--timeout", type=float, default=120.0)
        parser.set_defaults(func=func)
        return parser

    return command


def add_route_commands(routes: Any, config_default: Path) -> None:
    """Add the A/B routes' subcommands to ``medai routes``."""
    command = _commands(routes, config_default)
    put = command("set", "route an endpoint between versions (replaces its route)", cmd_route_set)
    put.add_argument("endpoint")
    put.add_argument(
        "--arm", type=_arm, action="append", required=True, help="name:version=weight (repeat)"
    )
    put.add_argument("--shadow", action="append", default=[], help="name:version (repeat)")
    put.add_argument("--sticky-key", choices=["patient_id"], help="same patient, same arm")

    show = command("show", "an endpoint's route, or every route", cmd_route_show)
    show.add_argument("endpoint", nargs="?")

    stats = command("stats", "per-arm counts, latency and positive rate", cmd_route_stats)
    stats.add_argument("endpoint")
    stats.add_argument("--limit", type=int, default=10_000, help="newest results to read")
    stats.add_argument("--since", help="only results from this instant on (RFC 3339)")

    delete = command("delete", "end an endpoint's route", cmd_route_delete)
    delete.add_argument("endpoint")


def add_model_commands(models: Any, config_default: Path) -> None:
    """Add the registry's subcommands to ``medai models``."""
    command = _commands(models, config_default)

    register = command("register", "register an ONNX file as a new version", cmd_register)
    register.add_argument("file", type=Path)
    register.add_argument("--name", required=True)
    register.add_argument("--version", required=True)
    register.add_argument("--clinical-domain")
    register.add_argument("--fda-submission-id")
    register.add_argument("--iso-certification")

    listing = command("list", "registered versions and their status", cmd_list)
    listing.add_argument("--name")

    promote = command("promote", "move a version on (to production retires the old)", cmd_promote)
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--to", required=True, choices=["validation", "production", "retired"])

    rollback = command("rollback", "serve a validated or retired version again", cmd_rollback)
    rollback.add_argument("name")
    rollback.add_argument("--to", required=True, help="the version to return to")
