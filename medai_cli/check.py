"""``medai models check FILE``: what the registry would read, assume or refuse in an ONNX
file, each with its fix, before it is registered.

The findings come from the registry's own code (``serve_app.runtime.examine``), run in
the same limited child process with the limits the configured server applies. Exit 1
when the registry would refuse the file, 0 otherwise (guesses included).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from medai_cli.common import config_settings
from serve_app.runtime.findings import Examination, Finding, Verdict

MARKS = {Verdict.OK: "ok", Verdict.GUESSED: "guessed", Verdict.REFUSED: "REFUSED"}


def examine_file(path: Path, config: Path) -> Examination:
    from serve_app.runtime.inspection import InspectionLimits, examine_in_child

    limits = config_settings(config).limits
    data = path.read_bytes()
    found = examine_in_child(data, InspectionLimits.of(limits))
    if len(data) > limits.max_model_bytes:
        found.findings.insert(
            0,
            Finding(
                Verdict.REFUSED,
                "size",
                f"file is {len(data)} bytes; uploads over {limits.max_model_bytes} bytes "
                "are refused (413)",
                "make the model smaller (float16 weights, pruning), or raise "
                "limits.max_model_bytes",
            ),
        )
    return found


def render(path: Path, found: Examination) -> str:
    lines = [f"{path}:"]
    for finding in found.findings:
        lines.append(f"  {MARKS[finding.verdict]:<8} {finding.rule:<15} {finding.detail}")
        if finding.verdict is not Verdict.OK and finding.fix:
            lines.append(f"  {'':<8} {'':<15} fix: {finding.fix}")
    refused = len(found.refusals)
    guessed = sum(f.verdict is Verdict.GUESSED for f in found.findings)
    verdict = (
        f"the registry would refuse it ({refused} refusal(s))"
        if refused
        else "the registry would register it"
    )
    lines.append(f"{verdict}; {guessed} value(s) it would assume")
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"medai models check: {args.file} is not a file", file=sys.stderr)
        return 2
    found = examine_file(args.file, args.config)
    if args.json:
        body = {
            "file": str(args.file),
            "registrable": not found.refusals,
            "findings": [f.to_json() for f in found.findings],
        }
        print(json.dumps(body, indent=2))
    else:
        print(render(args.file, found))
    return 1 if found.refusals else 0


def add_check_command(models: Any, config_default: Path) -> None:
    """Add ``check`` to ``medai models``."""
    check = models.add_parser(
        "check",
        help="what the registry would refuse or assume in an ONNX file, with fixes "
        "(exit 1: it would refuse it)",
    )
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="the findings as JSON")
    check.add_argument("--config", type=Path, default=config_default)
    check.set_defaults(func=cmd_check)
