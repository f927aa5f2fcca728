"""The console from the app Ray Serve serves (``serve_config.yaml``, the ingress's FastAPI
app): the same files, and a clinician's and an engineer's first steps through it, with
their tokens in no log of Ray's."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect
from pydicom.data import get_testdata_file

from tests.browser.console import open_page, sign_in_by_link
from tests.conftest import TokenFactory
from tests.serve.test_served_logs import ray_log_files

pytestmark = [pytest.mark.browser, pytest.mark.serve, pytest.mark.timeout(300)]


def test_the_served_console_answers_a_clinician_and_lists_models(
    page: Page, served: str, token_for: TokenFactory
) -> None:
    clinician = token_for("clinician", sub="served-console")
    sign_in_by_link(page, served, clinician)
    page.locator("#file").set_input_files(get_testdata_file("CT_small.dcm"))
    page.locator("#run").click()
    expect(page.locator("#answer-label")).to_have_text(re.compile(r"^(no_finding|pneumonia)$"))
    page.wait_for_function("document.getElementById('answer-image').naturalWidth === 256")

    page.locator("#sign-out").click()
    engineer = token_for("ml_engineer", sub="served-console")
    sign_in_by_link(page, served, engineer)
    open_page(page, "Models")
    demo = page.locator('section[data-model="chest-xray-demo"] tr[data-version="1.0.0"]')
    expect(demo.locator("td.status")).to_have_text("production")

    time.sleep(1)  # the replicas' log lines of these requests reach their files
    for path in ray_log_files():
        text = path.read_text(errors="replace")
        for token in (clinician, engineer):
            assert token not in text and token.split(".")[2] not in text, path
