"""Small SVG charts as strings: a histogram, horizontal bars, a scatter with percentile
lines. No plotting library: the summary stays one self-contained file."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 360, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 28, 30
BAR = "#3b6ea8"
MARK = "#c0392b"
TEXT = 'font-family="sans-serif" font-size="11"'


def _frame(title: str, body: list[str], x: int, y: int) -> str:
    return (
        f'<g transform="translate({x},{y})">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white" stroke="#ccc"/>'
        f'<text x="{WIDTH / 2}" y="17" text-anchor="middle" {TEXT} font-weight="bold">'
        f"{escape(title)}</text>" + "".join(body) + "</g>"
    )


def _plot_box() -> tuple[float, float, float, float]:
    """Left, top, width and height of the plotting area."""
    return LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _label(x: float, y: float, text: str, anchor: str = "middle") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {TEXT}>{escape(text)}</text>'


def histogram(
    title: str, values: Sequence[float], low: float = 0.0, high: float = 1.0, bins: int = 10
) -> tuple[str, int]:
    """Counts of ``values`` in ``bins`` equal bins over ``low..high``; the chart's svg body
    and its width. Values outside fall in the first or last bin."""
    counts = [0] * bins
    for value in values:
        index = int((value - low) / (high - low) * bins) if high > low else 0
        counts[min(max(index, 0), bins - 1)] += 1
    left, top, width, height = _plot_box()
    peak = max(counts, default=0) or 1
    body = []
    step = width / bins
    for i, count in enumerate(counts):
        bar = 0.9 * height * count / peak  # NOTE: room above the tallest for its count
        body.append(
            f'<rect x="{left + i * step + 1:.1f}" y="{top + height - bar:.1f}" '
            f'width="{step - 2:.1f}" height="{bar:.1f}" fill="{BAR}"><title>'
            f"{low + i * (high - low) / bins:.1f}..{low + (i + 1) * (high - low) / bins:.1f}: "
            f"{count}</title></rect>"
        )
        if count:
            body.append(_label(left + (i + 0.5) * step, top + height - bar - 3, str(count)))
    for i in range(0, bins + 1, max(1, bins // 5)):
        body.append(
            _label(left + i * step, top + height + 14, f"{low + i * (high - low) / bins:g}")
        )
    body.append(_axes())
    return _frame(title, body, 0, 0), WIDTH


def bars(title: str, counts: dict[str, int], limit: int = 8) -> tuple[str, int]:
    """One horizontal bar per key, largest first (the rest summed as ``other``)."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) > limit:
        ranked = [*ranked[: limit - 1], ("other", sum(c for _, c in ranked[limit - 1 :]))]
    left, top, width, height = _plot_box()
    left, width = 110.0, WIDTH - 110.0 - RIGHT - 24
    peak = max((c for _, c in ranked), default=0) or 1
    row = min(height / max(len(ranked), 1), 26.0)
    body = []
    for i, (name, count) in enumerate(ranked):
        y = top + i * row
        length = width * count / peak
        body.append(
            f'<rect x="{left}" y="{y + 2:.1f}" width="{length:.1f}" '
            f'height="{max(row - 4, 1):.1f}" fill="{BAR}"/>'
        )
        short = name if len(name) <= 16 else name[:15] + "…"
        body.append(_label(left - 4, y + row / 2 + 4, short, "end"))
        body.append(_label(left + length + 4, y + row / 2 + 4, str(count), "start"))
    return _frame(title, body, 0, 0), WIDTH


def scatter(title: str, values: Sequence[float], unit: str = "ms") -> tuple[str, int]:
    """One point per value in order, with the median and 95th percentile as lines."""
    left, top, width, height = _plot_box()
    peak = max(values, default=0.0) or 1.0
    body = []
    n = len(values)
    for i, value in enumerate(values):
        x = left + (i + 0.5) * width / max(n, 1)
        y = top + height - height * value / peak
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{BAR}"/>')
    ordered = sorted(values)
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        if not ordered:
            break
        value = ordered[min(n - 1, int(q * n))]
        y = top + height - height * value / peak
        body.append(
            f'<line x1="{left}" x2="{left + width}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{MARK}" stroke-dasharray="4 3"/>'
        )
        body.append(_label(left + width, y - 3, f"{name} {value:.0f} {unit}", "end"))
    body.append(_label(left - 4, top + 8, f"{peak:.0f}", "end"))
    body.append(_label(left - 4, top + height, "0", "end"))
    body.append(_label(left + width / 2, top + height + 14, f"{n} files, in the order answered"))
    body.append(_axes())
    return _frame(title, body, 0, 0), WIDTH


def _axes() -> str:
    left, top, width, height = _plot_box()
    return f'<path d="M{left},{top} V{top + height} H{left + width}" fill="none" stroke="#333"/>'


def panel(charts: Sequence[tuple[str, int]], heading: str) -> str:
    """The charts side by side under ``heading``, as one standalone SVG document."""
    gap, head = 12, 26
    total = sum(w for _, w in charts) + gap * max(len(charts) - 1, 0)
    parts, x = [], 0
    for chart, width in charts:
        parts.append(f'<g transform="translate({x},{head})">{chart}</g>')
        x += width + gap
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{HEIGHT + head}" '
        f'viewBox="0 0 {total} {HEIGHT + head}">'
        f'<text x="0" y="16" font-family="sans-serif" font-size="13">{escape(heading)}</text>'
        + "".join(parts)
        + "</svg>"
    )
