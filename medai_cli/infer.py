"""``medai infer PATH...``: every PNG, JPEG and DICOM file under the paths (recognised by
content) sent to a running server's ``POST /infer/file``, a few at a time; the answers in
``results.csv`` and a summary (``summary.html``, ``summary.svg``) in ``--out``.

Resumable: a file with an answer in ``results.csv`` is skipped; failed files are tried
again (their old rows go). Files that are unreadable or no supported image are reported
in the CSV and never sent. Exit 1 when any file has no answer, 2 when nothing was found.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medai_cli.common import bearer_token
from medai_cli.files import UPLOAD_NAMES, Candidate, discover, identify
from medai_cli.results import CSV_NAME, Row, RowWriter, read_rows, write_rows
from medai_cli.summary import HTML_NAME, SVG_NAME, headline, summary_html, summary_svg

DEFAULT_URL = "http://127.0.0.1:8000"
ATTEMPTS = 3
"""Tries per file when the server is busy (429, 503: after its Retry-After) or silent."""
MAX_WAIT_S = 10.0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _problem(response: Any) -> str:
    """One line for a refused file: status, the rule broken, the detail."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code}: " + " ".join(response.text[:200].split())
    detail = body.get("detail", "") if isinstance(body, dict) else ""
    rules = [e.get("rule") for e in body.get("errors", []) if isinstance(e, dict)]
    rule = f" ({rules[0]})" if rules and rules[0] else ""
    return f"{response.status_code}{rule}: {detail}"


def _retry_after(response: Any, attempt: int) -> float:
    try:
        return min(float(response.headers.get("retry-after", "")), MAX_WAIT_S)
    except ValueError:
        return min(2.0**attempt, MAX_WAIT_S)


async def send(client: Any, candidate: Candidate, form: dict[str, str]) -> Row:
    """The row for one image file: its answer, or why it has none."""
    import httpx

    assert candidate.format is not None
    file, fmt = str(candidate.path), candidate.format.value
    try:
        data = await asyncio.to_thread(candidate.path.read_bytes)
    except OSError as error:
        return Row(file, fmt, error=f"unreadable: {error.strerror or type(error).__name__}")
    name, part_type = UPLOAD_NAMES[candidate.format]
    for attempt in range(ATTEMPTS):
        started = time.perf_counter()
        try:
            response = await client.post(
                "/infer/file", files={"file": (name, data, part_type)}, data=form
            )
        except httpx.HTTPError as error:
            row = Row(file, fmt, error=f"no answer from the server: {type(error).__name__}")
            wait = min(2.0**attempt, MAX_WAIT_S)
        else:
            round_trip_ms = (time.perf_counter() - started) * 1000
            if response.status_code == 200:
                return Row.answered(file, fmt, response.json(), round_trip_ms)
            row = Row(file, fmt, status=str(response.status_code), error=_problem(response))
            if response.status_code not in (429, 503):
                break
            wait = _retry_after(response, attempt)
        if attempt < ATTEMPTS - 1:
            await asyncio.sleep(wait)
    return row


def _files(paths: Iterable[Path]) -> list[Path]:
    seen: dict[str, Path] = {}
    for path in discover(paths):
        seen.setdefault(os.path.normpath(path), Path(os.path.normpath(path)))
    return list(seen.values())


def _progress(total: int, enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


async def run(todo: list[Path], args: argparse.Namespace, writer: RowWriter, token: str) -> None:
    import httpx

    form = {"model": args.model or args.endpoint} if (args.model or args.endpoint) else {}
    queue: asyncio.Queue[Path] = asyncio.Queue()
    for path in todo:
        queue.put_nowait(path)
    limits = httpx.Limits(max_connections=args.concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    progress = _progress(len(todo), enabled=not args.no_progress)
    with progress:
        task = progress.add_task("medai infer", total=len(todo), rate="")
        started = time.monotonic()
        done = 0
        async with httpx.AsyncClient(
            base_url=args.url, headers=headers, timeout=args.timeout, limits=limits
        ) as client:

            async def worker() -> None:
                nonlocal done
                while not queue.empty():
                    path = queue.get_nowait()
                    candidate = await asyncio.to_thread(identify, path)
                    if candidate.format is None:
                        row = Row(str(path), error=candidate.problem or "not sent")
                    else:
                        row = await send(client, candidate, form)
                    writer.write(row)
                    done += 1
                    rate = done / max(time.monotonic() - started, 1e-9)
                    progress.update(task, advance=1, rate=f"{rate:.1f} files/s")

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))


def cmd_infer(args: argparse.Namespace) -> int:
    files = _files(args.paths)
    if not files:
        print("medai infer: no files under " + " ".join(map(str, args.paths)), file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / CSV_NAME
    previous = read_rows(csv_path)
    kept = [r for r in previous if r.ok]
    if len(kept) != len(previous) or not csv_path.exists():
        write_rows(csv_path, kept)  # failed files are tried again
    answered = {r.file for r in kept}
    todo = [f for f in files if str(f) not in answered]
    token = bearer_token(args, "clinician")
    writer = RowWriter(csv_path)
    try:
        asyncio.run(run(todo, args, writer, token))
    finally:
        writer.close()
    rows = read_rows(csv_path)
    svg = summary_svg(rows)
    (args.out / SVG_NAME).write_text(svg, encoding="utf-8")
    (args.out / HTML_NAME).write_text(summary_html(rows, svg), encoding="utf-8")
    skipped = len(files) - len(todo)
    print(
        f"{headline(rows)} ({len(todo)} sent or checked now, {skipped} already answered); "
        f"{csv_path}, {args.out / HTML_NAME}"
    )
    return 1 if any(not r.ok for r in rows) else 0


def add_infer_command(sub: Any, config_default: Path) -> None:
    """Add ``medai infer``."""
    infer = sub.add_parser(
        "infer",
        help="send every PNG, JPEG and DICOM under the paths to a server; a CSV and a summary",
    )
    infer.add_argument("paths", nargs="+", type=Path, help="files and folders (recursive)")
    infer.add_argument("--url", default=DEFAULT_URL, help="the server")
    infer.add_argument("--token", help="bearer token (default: MEDAI_TOKEN, or minted)")
    infer.add_argument("--as", dest="as_sub", default="medai-infer", help="minted `sub`")
    infer.add_argument("--config", type=Path, default=config_default)
    infer.add_argument("--out", type=Path, default=Path("."), help="where the results go")
    target = infer.add_mutually_exclusive_group()
    target.add_argument("--model", help="name or name:version (default: the default model)")
    target.add_argument("--endpoint", help="an A/B route's endpoint")
    infer.add_argument("--concurrency", type=_positive, default=4, help="files in flight")
    infer.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    infer.add_argument("--no-progress", action="store_true", help="no progress bar")
    infer.set_defaults(func=cmd_infer)
