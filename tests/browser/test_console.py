"""The console in a real headless Chromium against the in-process app under uvicorn: each
role's work end to end, what each role may not reach, and the console's security rules."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from pydicom.data import get_testdata_file

from tests.browser.conftest import screenshot
from tests.browser.console import open_page, sign_in_by_link
from tests.conftest import TokenFactory
from tests.images import encode, pixels

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


@pytest.fixture(scope="module")
def base_url(console_server: tuple[str, Path]) -> str:
    return console_server[0]


def test_a_clinician_uploads_the_ct_and_sees_the_answer(
    page: Page, base_url: str, token_for: TokenFactory, tmp_path: Path
) -> None:
    sign_in_by_link(page, base_url, token_for("clinician", sub="carla"))
    expect(page.locator("#page-title")).to_have_text("Inference")
    page.locator("#file").set_input_files(get_testdata_file("CT_small.dcm"))
    page.locator("#run").click()

    expect(page.locator("#answer-label")).to_have_text(["no_finding", "pneumonia"][0])
    screenshot(page, "clinician")
