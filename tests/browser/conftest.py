"""A real headless Chromium (Debian's ``chromium``) driven by Playwright, against the console
served over real HTTP. Without the browser these tests fail, never skip: ``make test``
installs it (``make browser``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from serve_app.settings import REPO_ROOT
from tests.uvicorn_server import uvicorn_server

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
"""Git-ignored; CI keeps it as an artefact and the README shows one per role."""
STEP_MS = 15_000
"""The longest one browser step (a click's answer, a selector's appearance) may take."""
expect.set_options(timeout=STEP_MS)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("no chromium on PATH: run `make browser` (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    # NOTE: module-scoped, not session: while Playwright's sync API is started, its event
    # loop counts as running in this thread, and every later test's asyncio.run() fails.
    with sync_playwright() as playwright:
        # NOTE: --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile per test: nothing in session storage carries over."""
    made = browser.new_context(viewport={"width": 1280, "height": 900})
    made.set_default_timeout(STEP_MS)
    try:
        yield made
    finally:
        made.close()


EXPECTED_CONSOLE_ERRORS = ("Failed to load resource",)
"""Chromium logs every 4xx answer as an error; the tests cause some on purpose."""


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails its test on any script error or refused resource (a CSP violation
    is one): what a person would see as a broken console."""
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and not message.text.startswith(EXPECTED_CONSOLE_ERRORS)
            else None
        ),
    )
    yield opened
    assert not problems, problems


@pytest.fixture(scope="module")
def console_server(
    server_args: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """The in-process app under uvicorn, logging at INFO (uvicorn's access lines with their
    query strings included) into a file the tests read: base URL and log path."""
    own = tmp_path_factory.mktemp("console")
    log_path = own / "server.log"
    with log_path.open("wb") as log, uvicorn_server(server_args, own, log, "info") as (url, _):
        yield url, log_path


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
