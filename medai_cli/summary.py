"""``medai infer``'s summary of a CSV: a standalone SVG of its charts (confidence
histogram, answers per label, per-file latency), and an HTML page with that SVG inline,
the counts and the failures."""

from __future__ import annotations

from collections import Counter
from html import escape

from medai_cli.charts import bars, histogram, panel, scatter
from medai_cli.results import Row

SVG_NAME = "summary.svg"
HTML_NAME = "summary.html"
FAILURES_SHOWN = 200


def headline(rows: list[Row]) -> str:
    ok = sum(r.ok for r in rows)
    return f"{len(rows)} files: {ok} answered, {len(rows) - ok} failed"


def summary_svg(rows: list[Row]) -> str:
    answered = [r for r in rows if r.ok]
    confidences = [float(r.confidence) for r in answered if r.confidence]
    labels = Counter(r.prediction for r in answered)
    latencies = [float(r.round_trip_ms) for r in answered if r.round_trip_ms]
    return panel(
        [
            histogram("Confidence", confidences),
            bars("Answers per label", dict(labels)),
            scatter("Latency per file (round trip)", latencies),
        ],
        headline(rows),
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def summary_html(rows: list[Row], svg: str) -> str:
    answered = [r for r in rows if r.ok]
    failed = [r for r in rows if not r.ok]
    models = Counter(f"{r.model}:{r.version}" for r in answered)
    labels = Counter(r.prediction for r in answered)
    errors = [[r.file, r.status, r.error] for r in failed[:FAILURES_SHOWN]]
    more = len(failed) - len(errors)
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8"><title>medai infer</title>',
            "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;"
            "margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
            "</style></head><body>",
            f"<h1>medai infer: {escape(headline(rows))}</h1>",
            svg,
            "<h2>Answers per model version</h2>",
            _table(["model:version", "files"], [[m, str(c)] for m, c in models.most_common()]),
            "<h2>Answers per label</h2>",
            _table(["prediction", "files"], [[p, str(c)] for p, c in labels.most_common()]),
            f"<h2>Failures ({len(failed)})</h2>",
            _table(["file", "status", "error"], errors) if errors else "<p>None.</p>",
            f"<p>… and {more} more (results.csv).</p>" if more > 0 else "",
            "</body></html>",
        ]
    )
