"""The console from the app Ray Serve serves (``serve_config.yaml``, the ingress's FastAPI
app): the same files, and a clinician's and an engineer's first steps through it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from pydicom.data import get_testdata_file

from tests.browser.console import open_page, sign_in_by_link
from tests.conftest import TokenFactory

pytestmark = [pytest.mark.browser, pytest.mark.serve, pytest.mark.timeout(300)]


def test_the_served_console_answers_a_clinician_and_lists_models(
    page: Page, served: str, token_for: TokenFactory
) -> None:
    sign_in_by_link(page, served, token_for("clinician"))
    page.locator("#file").set_input_files(get_testdata_file("CT_small.dcm"))
    page.locator("#run").click()
    expect(page.locator("#answer-label")).to_have_text(re.compile(r"^(no_finding|pneumonia)$"))

    page.locator("#sign-out").click()
    sign_in_by_link(page, served, token_for("ml_engineer"))
    open_page(page, "Models")
    demo = page.locator('section[data-model="chest-xray-demo"] tr[data-version="1.0.0"]')
    expect(demo.locator("td.status")).to_have_text("production")
