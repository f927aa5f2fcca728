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


def test_a_file_is_sent_by_its_format_never_under_its_own_name(tmp_path: Path) -> None:
    import asyncio

    import httpx

    from medai_cli.infer import send

    path = tmp_path / "MRN-0042 Jane Doe.dcm"
    path.write_bytes(encode(pixels(2, 64, 64), "JPEG"))
    bodies: list[bytes] = []

    def server(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return httpx.Response(503, headers={"retry-after": "0"}, json={"detail": "busy"})

    async def go() -> Row:
        transport = httpx.MockTransport(server)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            return await send(client, identify(path), {"model": "m"})

    row = asyncio.run(go())

    assert len(bodies) == 3  # a busy server is asked again, ATTEMPTS times
    assert b'filename="image.jpg"' in bodies[0] and b"Content-Type: image/jpeg" in bodies[0]
    assert all(b"MRN" not in body and b"Jane" not in body for body in bodies)
    assert (row.file, row.format, row.status, row.error) == (
        str(path),
        "jpeg",
        "503",
        "503: busy",
    )
