"""``medai infer`` over a folder mixing PNG, JPEG, DICOM (some misnamed) and junk, against
a real server: the app in its own uvicorn process, and the app served by Ray."""

from __future__ import annotations

import csv
import shutil
import xml.dom.minidom
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from medai_cli.main import main
from serve_app.codecs.types import EncodedImage, ImageFormat
from tests.api.test_body_streaming import uvicorn_app  # noqa: F401  (a server)
from tests.conftest import TokenFactory
from tests.images import encode, pixels
from tests.oracle import direct_outputs
from tests.ports import free_port

pytestmark = pytest.mark.timeout(300)

CHEST = "chest-xray-demo"


@pytest.fixture(params=["uvicorn", pytest.param("served", marks=pytest.mark.serve)])
def server(request: pytest.FixtureRequest) -> str:
    if request.param == "uvicorn":
        return request.getfixturevalue("uvicorn_app")[0]
    return request.getfixturevalue("served")


def mixed_folder(root: Path) -> dict[str, str]:
    """Images and junk under ``root``; each file's path as ``medai infer`` names it, and
    what it is (a format, or what the CSV should say of it)."""
    scans = root / "scans"
    (scans / "ward 3" / "day 1").mkdir(parents=True)
    (scans / ".cache").mkdir()
    files = {
        "a.png": encode(pixels(60, 128, 128), "PNG"),
        "ward 3/b.jpg": encode(pixels(61, 160, 140, channels=3), "JPEG", quality=90),
        "ward 3/day 1/ct.dcm": Path(get_testdata_file("CT_small.dcm")).read_bytes(),
        "ward 3/mr-saved-as.png": Path(get_testdata_file("MR_small.dcm")).read_bytes(),
        "jpeg-named.dcm": encode(pixels(62, 96, 96), "JPEG"),
        "notes.txt": b"reported by Dr. Example",
        "logo.gif": b"GIF89a" + b"\x00" * 64,
        "cut.png": encode(pixels(63, 128, 128), "PNG")[:300],
        ".cache/hidden.png": encode(pixels(64, 128, 128), "PNG"),
    }
    for name, data in files.items():
        (scans / name).write_bytes(data)
    kinds = {
        "a.png": "png",
        "ward 3/b.jpg": "jpeg",
        "ward 3/day 1/ct.dcm": "dicom",
        "ward 3/mr-saved-as.png": "dicom",
        "jpeg-named.dcm": "jpeg",
        "notes.txt": "not sent: file content is text",
        "logo.gif": "not sent: file content is GIF",
        "cut.png": "422 (png)",
    }
    return {str(scans / name): kind for name, kind in kinds.items()}


def infer(*args: str) -> int:
    return main(["infer", *args, "--no-progress"])


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    by_file = {r["file"]: r for r in rows}
    assert len(by_file) == len(rows), "one row per file"
    return by_file


def test_a_mixed_folder_gives_a_csv_a_summary_and_exit_1(
    server: str,
    token_for: TokenFactory,
    model_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = mixed_folder(tmp_path)
    out = tmp_path / "out"
    token = token_for("clinician", sub="batch-reader")

    code = infer(str(tmp_path / "scans"), "--url", server, "--token", token,
                 "--out", str(out), "--concurrency", "3")  # fmt: skip

    assert code == 1  # the junk and the cut PNG have no answer
    rows = read_csv(out / "results.csv")
    assert set(rows) == set(expected)  # recursive, dot-folders left out
    for file, kind in expected.items():
        row = rows[file]
        if kind in ("png", "jpeg", "dicom"):
            assert (row["status"], row["error"], row["format"]) == ("200", "", kind), row
            assert (row["model"], row["version"]) == (CHEST, "1.0.0")
            assert row["prediction"] in ("no_finding", "pneumonia") and row["inference_id"]
            assert float(row["round_trip_ms"]) >= float(row["latency_ms"]) > 0
        else:
            assert row["error"].startswith(kind) and not row["inference_id"], row
    png = rows[str(tmp_path / "scans" / "a.png")]
    image = EncodedImage((tmp_path / "scans" / "a.png").read_bytes(), ImageFormat.PNG)
    assert float(png["confidence"]) == pytest.approx(
        direct_outputs(model_store, CHEST, image)[1], abs=1e-5
    )
    html = (out / "summary.html").read_text()
    assert "8 files: 5 answered, 3 failed" in html and "<svg" in html
    assert "Confidence" in html and "Latency per file" in html and "no_finding" in html
    svg = xml.dom.minidom.parse(str(out / "summary.svg")).documentElement
    assert svg.tagName == "svg" and len(svg.getElementsByTagName("circle")) == 5
    assert "results.csv" in capsys.readouterr().out


def test_a_rerun_skips_answered_files_and_retries_the_rest(
    server: str, token_for: TokenFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = mixed_folder(tmp_path)
    scans, out = tmp_path / "scans", tmp_path / "out"
    token = token_for("clinician")
    assert infer(str(scans), "--url", server, "--token", token, "--out", str(out)) == 1
    first = read_csv(out / "results.csv")
    capsys.readouterr()

    # The cut PNG is mended, the junk goes: every file is answered, the old ones not again.
    (scans / "cut.png").write_bytes(encode(pixels(63, 128, 128), "PNG"))
    (scans / "notes.txt").unlink()
    (scans / "logo.gif").unlink()
    shutil.copy(scans / "a.png", scans / "new.png")
    code = infer(str(scans), "--url", server, "--token", token, "--out", str(out))

    assert code == 0, read_csv(out / "results.csv")
    second = read_csv(out / "results.csv")
    answered = [f for f, kind in expected.items() if kind in ("png", "jpeg", "dicom")]
    for file in answered:
        assert second[file]["inference_id"] == first[file]["inference_id"]
    assert second[str(scans / "cut.png")]["status"] == "200"
    assert second[str(scans / "new.png")]["status"] == "200"
    # Failed rows are dropped and tried again; the junk's rows stay gone with the files.
    assert set(second) == {*answered, str(scans / "cut.png"), str(scans / "new.png")}
    assert "(2 sent or checked now, 5 already answered)" in capsys.readouterr().out


def test_an_unreachable_server_is_a_row_per_file_not_a_crash(
    token_for: TokenFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.png").write_bytes(encode(pixels(65, 64, 64), "PNG"))
    url = f"http://127.0.0.1:{free_port()}"

    # NOTE: with the progress bar (on stderr), which the other tests turn off.
    code = main(["infer", str(tmp_path / "a.png"), "--url", url, "--token", "x",
                 "--out", str(tmp_path)])  # fmt: skip

    assert code == 1
    (row,) = read_csv(tmp_path / "results.csv").values()
    assert row["error"] == "no answer from the server: ConnectError"
    assert "Traceback" not in capsys.readouterr().err


def test_the_model_asked_for_answers(server: str, token_for: TokenFactory, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(encode(pixels(66, 96, 96, channels=3), "JPEG"))
    token = token_for("clinician")

    code = infer(str(tmp_path / "in"), "--url", server, "--token", token,
                 "--out", str(tmp_path / "out"), "--model", "derm-demo:1.0.0")  # fmt: skip

    assert code == 0
    (row,) = read_csv(tmp_path / "out" / "results.csv").values()
    assert (row["model"], row["version"], row["format"]) == ("derm-demo", "1.0.0", "jpeg")
    assert row["prediction"] in ("benign", "malignant", "indeterminate")


def test_nothing_to_send_is_a_usage_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert infer(str(tmp_path / "empty"), "--out", str(tmp_path)) == 2
    assert "no files under" in capsys.readouterr().err
