"""Decoder workers: real child processes, real limits; a bomb costs a worker, not the caller."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from serve_app.child_env import child_environment
from serve_app.codecs.decode import Decoder, decode
from serve_app.codecs.sandbox import DecoderPool
from serve_app.codecs.types import EncodedImage, ImageFormat
from serve_app.errors import InvalidInput
from serve_app.settings import DecodingSettings, LimitsSettings
from tests.dicoms import deflated_rgb_dicom
from tests.images import encode, pixels

LIMITS = LimitsSettings()
CT = EncodedImage(Path(get_testdata_file("CT_small.dcm")).read_bytes(), ImageFormat.DICOM)
BOMB = EncodedImage(deflated_rgb_dicom(), ImageFormat.DICOM)


@pytest.fixture
def pool(request: pytest.FixtureRequest) -> Iterator[DecoderPool]:
    options = getattr(request, "param", {})
    pool = DecoderPool(DecodingSettings(workers=1, **options), LIMITS)
    yield pool
    pool.close()


def only_worker(pool: DecoderPool) -> int:
    """The pid of the pool's one idle worker."""
    worker = pool._idle.get_nowait()
    pool._idle.put(worker)
    return worker.process.pid


def test_a_worker_decodes_what_this_process_decodes(pool: DecoderPool) -> None:
    png = EncodedImage(encode(pixels(3, 300, 200, channels=3), "PNG"), ImageFormat.PNG)

    for image in (CT, png):
        np.testing.assert_array_equal(pool.decode(image).pixels, decode(image, LIMITS).pixels)


def test_a_worker_answers_our_errors_and_is_kept(pool: DecoderPool) -> None:
    pool.decode(CT)
    pid = only_worker(pool)

    with pytest.raises(InvalidInput) as raised:
        pool.decode(EncodedImage(CT.data[:400], ImageFormat.DICOM))

    assert raised.value.rule != "decoder-limit"
    assert only_worker(pool) == pid


@pytest.mark.parametrize("pool", [{"memory_bytes": 64 * 1024 * 1024}], indirect=True)
def test_a_file_past_the_memory_limit_costs_the_worker_only(pool: DecoderPool) -> None:
    assert len(BOMB.data) < 16 * 1024  # 12 KB inflating to 12 MiB, ~0.2 GiB to decode
    pool.decode(CT)
    first = only_worker(pool)

    with pytest.raises(InvalidInput) as raised:
        pool.decode(BOMB)

    assert (raised.value.status, raised.value.field, raised.value.rule) == (
        422,
        "file",
        "decoder-limit",
    )
    assert pool.decode(CT).pixels.shape == (128, 128, 1)  # a new worker
    assert only_worker(pool) != first
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)  # the spent worker is gone, not left behind


def test_the_default_limits_decode_the_same_file(pool: DecoderPool) -> None:
    assert pool.decode(BOMB).pixels.shape == (2048, 2048, 3)


@pytest.mark.parametrize("pool", [{"timeout_s": 0.5}], indirect=True)
def test_a_hung_worker_is_a_decoder_limit_and_is_replaced(pool: DecoderPool) -> None:
    pool.decode(CT)
    hung = only_worker(pool)
    os.kill(hung, signal.SIGSTOP)  # a decoder stuck forever, as far as the caller can tell

    with pytest.raises(InvalidInput) as raised:
        pool.decode(CT)

    assert raised.value.rule == "decoder-limit" and "0.5 s" in raised.value.detail
    assert pool.decode(CT).pixels.shape == (128, 128, 1)
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)


def test_a_worker_killed_while_idle_is_replaced_unseen(pool: DecoderPool) -> None:
    pool.decode(CT)
    worker = pool._idle.get_nowait()
    pool._idle.put(worker)
    os.kill(worker.process.pid, signal.SIGKILL)  # the kernel's OOM killer, say
    worker.process.wait(timeout=10)

    assert pool.decode(CT).pixels.shape == (128, 128, 1)


def test_workers_get_no_secrets() -> None:
    assert os.environ["MEDAI_JWT_SECRET"]  # set by tests/conftest.py, as a deployment would

    env = child_environment()

    assert not any(name.startswith("MEDAI_") for name in env)
    assert env["OPENBLAS_NUM_THREADS"] == "1"


def test_only_the_isolated_formats_go_to_a_worker() -> None:
    decoder = Decoder(DecodingSettings(isolated=["dicom"], workers=1), LIMITS)
    png = EncodedImage(encode(pixels(4, 64, 64), "PNG"), ImageFormat.PNG)
    try:
        decoder(png)
        assert decoder.pool._idle.empty()  # no worker was started for the PNG
        decoder(CT)
        assert not decoder.pool._idle.empty()
    finally:
        decoder.pool.close()
