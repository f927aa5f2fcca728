"""What ``medai infer`` finds, writes and draws, without a server."""

from __future__ import annotations

import xml.dom.minidom
from pathlib import Path

from medai_cli.files import discover, identify
from medai_cli.results import Row, RowWriter, read_rows, write_rows
from medai_cli.summary import summary_html, summary_svg
from serve_app.codecs.types import ImageFormat
from tests.images import encode, pixels


def test_folders_are_walked_sorted_without_dot_entries_and_missing_paths_kept(
    tmp_path: Path,
) -> None:
    for name in ("b/z.png", "b/.hidden/x.png", ".dot.png", "a.png", "b/c/d.dcm"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    missing = tmp_path / "absent.png"

    found = list(discover([tmp_path, missing]))

    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.png",
        "b/c/d.dcm",
        "b/z.png",
        "absent.png",
    ]


def test_files_are_told_by_content_and_the_rest_says_why(tmp_path: Path) -> None:
    (tmp_path / "scan.dcm").write_bytes(encode(pixels(1, 64, 64), "PNG"))
    (tmp_path / "a.bin").write_bytes(b"%PDF-1.7\n")

    assert identify(tmp_path / "scan.dcm").format is ImageFormat.PNG
    pdf = identify(tmp_path / "a.bin")
    assert pdf.format is None and pdf.problem is not None
    assert pdf.problem.startswith("not sent: file content is PDF;")
    absent = identify(tmp_path / "absent")
    assert absent.problem == "unreadable: No such file or directory"


def test_rows_survive_a_round_trip_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    first = Row.answered(
        "a, \"odd\".png",
        "png",
        {"model_name": "m", "model_version": "1", "prediction": "yes",
         "confidence_score": 0.25, "threshold": 0.5, "inference_id": "id-1", "latency_ms": 3},
        12.5,
    )  # fmt: skip
    write_rows(path, [first])
    writer = RowWriter(path)
    writer.write(Row("b.txt", error="not sent: file content is text; ..."))
    writer.close()

    rows = read_rows(path)

    assert rows == [first, Row("b.txt", error="not sent: file content is text; ...")]
    assert (rows[0].confidence, rows[0].ok, rows[1].ok) == ("0.250000", True, False)


def test_the_summary_escapes_file_names_and_draws_each_answer() -> None:
    rows = [
        Row("<script>alert(1)</script>.png", error="422 (png): bad"),
        *(
            Row(
                f"{i}.png", "png", "m", "1", label, f"{c}", "0.5", f"id{i}", "2", f"{10 + i}", "200"
            )
            for i, (label, c) in enumerate([("yes", 0.95), ("no", 0.05), ("no", 0.15)])
        ),
    ]

    svg = summary_svg(rows)
    html = summary_html(rows, svg)

    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "4 files: 3 answered, 1 failed" in html
    document = xml.dom.minidom.parseString(svg).documentElement
    assert len(document.getElementsByTagName("circle")) == 3
    counts = [t.firstChild.data for t in document.getElementsByTagName("title")]
    assert counts[0] == "0.0..0.1: 1" and counts[-1] == "0.9..1.0: 1"
