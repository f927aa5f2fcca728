"""The served app stores on the database this pass is meant to test: SQLite in
``data_dir`` in Ray Serve's default mode, PostgreSQL in high-throughput mode."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import HIGH_THROUGHPUT
from tests.images import infer_body, pixels

pytestmark = pytest.mark.serve


async def postgres_has(url: str, inference_id: str) -> bool:
    base, _, schema = url.partition("?schema=")
    connection = await asyncpg.connect(base, server_settings={"search_path": schema})
    try:
        sql = "SELECT count(*) FROM inference_results WHERE inference_id = $1"
        return bool(await connection.fetchval(sql, inference_id))
    finally:
        await connection.close()


def sqlite_has(path: Path, inference_id: str) -> bool:
    with sqlite3.connect(path) as connection:
        sql = "SELECT count(*) FROM inference_results WHERE inference_id = ?"
        return bool(connection.execute(sql, (inference_id,)).fetchone()[0])


def test_a_served_answer_is_stored_in_this_passes_database(
    served: str, clinician: dict[str, str], served_storage: dict[str, Any], data_dir: Path
) -> None:
    with httpx.Client(base_url=served, headers=clinician, timeout=60) as client:
        response = client.post("/infer", json=infer_body(pixels(31, 64, 64)))
    assert response.status_code == 200, response.text
    inference_id = response.json()["inference_id"]
    sqlite_file = data_dir / "medai.sqlite3"
    if HIGH_THROUGHPUT:
        assert served_storage, "the high-throughput pass serves from PostgreSQL"
        url = served_storage["storage"]["database_url"]
        assert asyncio.run(postgres_has(url, inference_id))
        assert not sqlite_file.exists() or not sqlite_has(sqlite_file, inference_id)
    else:
        assert served_storage == {}
        assert sqlite_has(sqlite_file, inference_id)
