"""The console in a real headless Chromium against the in-process app under uvicorn: each
role's work end to end, what each role may not reach, and the console's security rules.

One server for the module; each test signs in afresh in a new browser profile and uses
model names and endpoints of its own, so the tests do not depend on their order.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from pydicom.data import get_testdata_file

from tests.api.test_records import as_role
from tests.api.test_registry import model_file
from tests.browser.conftest import screenshot
from tests.browser.console import confirm, open_page, sign_in_by_link
from tests.conftest import TokenFactory
from tests.images import encode, infer_body, pixels
from tests.serve.test_hot_swap import MODEL, variant

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
"""Markup that would run if any page wrote data as HTML."""


@pytest.fixture(scope="module")
def base_url(console_server: tuple[str, Path]) -> str:
    return console_server[0]


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        yield client


def assert_nothing_ran(page: Page) -> None:
    assert page.evaluate("window.pwned") is None
    assert page.locator("img[src=x]").count() == 0


def test_a_clinician_uploads_the_ct_and_sees_the_answer(
    page: Page, base_url: str, token_for: TokenFactory
) -> None:
    sign_in_by_link(page, base_url, token_for("clinician", sub="carla"))
    expect(page.locator("#page-title")).to_have_text("Inference")
    page.locator("#file").set_input_files(get_testdata_file("CT_small.dcm"))
    page.locator("#run").click()

    expect(page.locator("#answer-label")).to_have_text(re.compile(r"^(no_finding|pneumonia)$"))
    expect(page.locator("#answer-confidence")).to_have_text(re.compile(r"^\d+\.\d %$"))
    expect(page.locator("#answer-model")).to_have_text("chest-xray-demo:1.0.0")
    # The slice as the model saw it: windowed by the platform, at the model's 256x256.
    expect(page.locator("#answer-image-caption")).to_contain_text("chest-xray-demo 1.0.0 saw it")
    page.wait_for_function("document.getElementById('answer-image').naturalWidth === 256")
    expect(page.locator("#recent tbody tr")).to_have_count(1)
    screenshot(page, "clinician")
    answered = page.locator("#answer code").text_content()
    page.reload()  # the recent results are the server's, not the tab's
    expect(page.locator("#recent tbody tr code")).to_have_text([answered or "?"])


def test_a_png_is_shown_and_a_hostile_patient_id_stays_text(
    page: Page, base_url: str, token_for: TokenFactory, tmp_path: Path
) -> None:
    png = tmp_path / "grey.png"
    png.write_bytes(encode(pixels(3, 96, 96), "PNG"))
    sign_in_by_link(page, base_url, token_for("clinician"))
    page.locator("#file").set_input_files(png)
    page.locator("#patient-id").fill(HOSTILE)
    page.locator("#run").click()

    expect(page.locator("#answer-patient")).to_have_text(HOSTILE)
    expect(page.locator("#recent td.patient").first).to_have_text(HOSTILE)
    expect(page.locator("#answer-image")).to_be_visible()
    page.wait_for_function("document.getElementById('answer-image').naturalWidth === 256")
    assert_nothing_ran(page)


def test_a_hostile_subject_and_model_name_render_as_text(
    page: Page, base_url: str, token_for: TokenFactory
) -> None:
    sign_in_by_link(page, base_url, token_for("admin", sub=HOSTILE))
    expect(page.locator("#signed-in-as")).to_have_text(f"{HOSTILE} (admin)")
    page.locator("#file").set_input_files(get_testdata_file("CT_small.dcm"))
    page.locator("#run").click()  # audited with the subject as its actor
    expect(page.locator("#answer-label")).to_be_visible()
    page.locator("#model").fill(HOSTILE)
    page.locator("#run").click()
    expect(page.locator("#notice")).to_contain_text("Error 422")

    open_page(page, "Audit trail")
    page.locator("#filter-actor").fill(HOSTILE)
    expect(page.locator("#trail td.actor").first).to_have_text(HOSTILE)
    assert_nothing_ran(page)


def test_an_engineer_registers_promotes_and_rolls_back(
    page: Page, base_url: str, token_for: TokenFactory, tmp_path: Path
) -> None:
    name = f"ui-{uuid.uuid4().hex[:8]}"
    sign_in_by_link(page, base_url, token_for("ml_engineer", sub="emil"))
    open_page(page, "Models")
    for version in ("1", "2"):
        onnx = tmp_path / f"{version}.onnx"
        onnx.write_bytes(model_file(version))
        page.locator("#register-file").set_input_files(onnx)
        page.locator("#register-name").fill(name)
        page.locator("#register-version").fill(version)
        page.get_by_role("button", name="Register").click()
        expect(page.locator("#notice")).to_contain_text(f"Registered {name} {version}")
    model = page.locator(f'section[data-model="{name}"]')
    expect(model.locator("code.hash")).to_have_count(2)
    expect(model.locator("code.hash").first).to_have_text(re.compile(r"^[0-9a-f]{64}$"))

    def promote(version: str, to: str, names: str) -> None:
        row = model.locator(f'tr[data-version="{version}"]')
        row.get_by_role("combobox").select_option(to)
        row.locator('[data-action="promote"]').click()
        confirm(page, names)
        expect(row.locator("td.status")).to_have_text(to)

    promote("1", "validation", f"{name} 1 moves from development to validation")
    promote("1", "production", f"{name} 1 moves from validation to production")
    promote("2", "validation", "moves from development to validation")
    promote("2", "production", f"{name} 1 (production now) will be retired")
    expect(model.locator('tr[data-version="1"] td.status')).to_have_text("retired")

    model.locator('tr[data-version="1"] [data-action="rollback"]').click()
    page.locator("#confirm-cancel").click()  # cancelling changes nothing
    expect(model.locator('tr[data-version="2"] td.status')).to_have_text("production")
    model.locator('tr[data-version="1"] [data-action="rollback"]').click()
    confirm(page, f"{name} 2 (production now) will be retired, and 1 (retired) will answer")
    expect(model.locator('tr[data-version="1"] td.status')).to_have_text("production")
    expect(model.locator('tr[data-version="2"] td.status')).to_have_text("retired")
    screenshot(page, "ml_engineer")


def test_an_engineer_sets_a_route_and_its_plots_follow_the_traffic(
    page: Page,
    base_url: str,
    http: httpx.Client,
    token_for: TokenFactory,
    model_store: Path,
) -> None:
    engineer = as_role(token_for, "ml_engineer")
    arms = []
    for i in range(3):  # two arms and a shadow
        version = f"ui-{uuid.uuid4().hex[:8]}"
        files = {"file": ("model.onnx", variant(model_store, 0.3 + 0.2 * i, tag=version))}
        made = http.post(
            "/models", files=files, data={"name": MODEL, "version": version}, headers=engineer
        )
        assert made.status_code == 201, made.text
        moved = http.post(
            f"/models/{MODEL}/{version}/promote", json={"to": "validation"}, headers=engineer
        )
        assert moved.status_code == 200, moved.text
        arms.append(f"{MODEL}:{version}")
    shadow = arms.pop()
    endpoint = f"ui-ab-{uuid.uuid4().hex[:6]}"
    try:
        sign_in_by_link(page, base_url, token_for("ml_engineer"))
        open_page(page, "Routes")
        page.locator("#route-endpoint").fill(endpoint)
        page.locator("#route-arms").fill(f"{arms[0]}=1, {arms[1]}=1")
        page.locator("#route-shadows").fill(shadow)
        page.get_by_role("button", name="Set route").click()
        confirm(page, f"{endpoint} will answer from {arms[0]} (weight 1)")
        expect(page.locator(f'#routes tr[data-endpoint="{endpoint}"]')).to_contain_text(arms[1])

        stats = page.locator(f'section[data-stats="{endpoint}"]')
        expect(stats).to_be_visible()
        requests = stats.locator("figure[id$='-requests']")
        clinician = as_role(token_for, "clinician")
        for seed in range(12):
            body = infer_body(pixels(seed, 64, 64), model=endpoint)
            answered = http.post("/infer", json=body, headers=clinician)
            assert answered.status_code == 200, answered.text

        # Both arms and the shadow drawn as lines of several samples; the arms' counts add
        # up to the traffic.
        expect(requests.locator("polyline")).to_have_count(3, timeout=30_000)
        expect(stats.locator("tbody tr[data-kind=arm]")).to_have_count(2)
        expect(stats.locator("tbody")).to_contain_text(arms[0])
        page.wait_for_function(
            "([endpoint, total]) => [...document.querySelectorAll("
            "`section[data-stats='${endpoint}'] tr[data-kind=arm] td.count`)]"
            ".reduce((sum, td) => sum + Number(td.textContent), 0) === total",
            arg=[endpoint, 12],
        )
        latency = stats.locator("figure[id$='-latency']")
        expect(latency.locator("svg[role=img] polyline")).to_have_count(6)  # p50/95/99 per arm
        expect(stats.locator("figure[id$='-positive'] svg[role=img]")).to_be_visible()
        # The shadow's copies are stored beside the answers: its agreement is plotted.
        expect(stats.locator(f'tr[data-kind=shadow][data-model="{shadow}"]')).to_be_visible()
        agreement = stats.locator("figure[id$='-agreement'] .legend li")
        expect(agreement).to_have_text([re.compile(rf"^{re.escape(shadow)}: \d+\.\d %$")])
        screenshot(page, "routes")
    finally:
        http.delete(f"/routes/{endpoint}", headers=engineer)


def test_an_auditor_pages_filters_and_verifies_the_trail(
    page: Page, base_url: str, http: httpx.Client, token_for: TokenFactory
) -> None:
    clinician = as_role(token_for, "clinician")
    answered = http.post("/infer", json=infer_body(pixels(9, 64, 64)), headers=clinician)
    assert answered.status_code == 200, answered.text  # the trail holds at least this
    sign_in_by_link(page, base_url, token_for("auditor", sub="audrey"))
    expect(page.locator("#page-title")).to_have_text("Audit trail")
    expect(page.locator("#trail tbody tr").first).to_be_visible()

    page.locator("#verify").click()
    expect(page.locator("#verify-valid")).to_have_text("yes")
    expect(page.locator("#verify-head")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(page.locator("#verify-first-bad")).to_have_text("none")
    assert int(page.locator("#verify-entries").text_content() or "0") > 0

    page.reload()  # read the trail again: it now holds this auditor's own reads
    page.locator("#filter-actor").fill("audrey")
    actors = page.locator("#trail td.actor")
    expect(actors.first).to_have_text("audrey")
    assert set(actors.all_text_contents()) == {"audrey"}
    assert {"audit.read", "audit.verify"} <= set(
        page.locator("#trail td.action").all_text_contents()
    )
    page.locator("#filter-action").fill("audit.verify")
    expect(page.locator("#trail td.action")).to_have_text(["audit.verify"])
    page.locator("#filter-action").fill("")
    page.locator("#filter-actor").fill("")
    page.locator("#verify").click()
    expect(page.locator("#verify-valid")).to_have_text("yes")
    screenshot(page, "auditor")

    # Models and routes too, as the API lets an auditor read them: read only.
    nav = page.get_by_role("navigation", name="Pages")
    expect(nav.get_by_role("link")).to_have_text(["Models", "Routes", "Audit trail"])
    open_page(page, "Models")
    demo = page.locator('section[data-model="chest-xray-demo"] tr[data-version="1.0.0"]')
    expect(demo.locator("td.status")).to_have_text("production")
    expect(page.locator("#register-form, [data-action]")).to_have_count(0)
    open_page(page, "Routes")
    expect(page.locator("#stats-updated")).to_contain_text("Updated")
    expect(page.locator("#route-form, #routes button")).to_have_count(0)


def test_a_clinician_cannot_reach_the_engineers_pages_nor_their_api(
    page: Page, base_url: str, token_for: TokenFactory
) -> None:
    sign_in_by_link(page, base_url, token_for("clinician"))
    nav = page.get_by_role("navigation", name="Pages")
    expect(nav.get_by_role("link")).to_have_text(["Inference"])
    for hash_path in ("#/models", "#/routes", "#/audit"):
        page.goto(f"{base_url}/ui/{hash_path}")
        expect(page.locator("#denied")).to_contain_text("This page needs the role")
    expect(page.locator("#denied")).to_contain_text("admin or auditor")

    # The page is only a courtesy: the API refuses the clinician's own token regardless.
    statuses = page.evaluate(
        """async () => {
            const auth = {Authorization: `Bearer ${sessionStorage.getItem("medai.token")}`};
            const get = (path) => fetch(path, {headers: auth}).then((r) => r.status);
            return [await get("/models"), await get("/routes"), await get("/audit")];
        }"""
    )
    assert statuses == [403, 403, 403]


def test_a_403_names_the_role_needed_and_a_401_returns_to_sign_in(
    page: Page, base_url: str, token_for: TokenFactory, tmp_path: Path
) -> None:
    sign_in_by_link(page, base_url, token_for("ml_engineer"))
    open_page(page, "Models")
    # The identity provider changes the person's role under an open page.
    page.evaluate("t => sessionStorage.setItem('medai.token', t)", token_for("auditor"))
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(model_file("x"))
    page.locator("#register-file").set_input_files(onnx)
    page.locator("#register-name").fill(f"ui-{uuid.uuid4().hex[:8]}")
    page.locator("#register-version").fill("1")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#notice")).to_contain_text("403")
    expect(page.locator("#notice")).to_contain_text("This needs the role admin or ml_engineer")

    wrong_key = token_for("ml_engineer")[:-4] + "AAAA"  # a signature the server refuses
    page.evaluate("t => sessionStorage.setItem('medai.token', t)", wrong_key)
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#sign-in-problem")).to_contain_text("Signed out")
    assert page.evaluate("sessionStorage.length") == 0


def test_a_pasted_token_signs_in_and_signing_out_forgets_it(
    page: Page, base_url: str, token_for: TokenFactory
) -> None:
    page.goto(f"{base_url}/ui/")
    page.locator("#token").fill("not a token")
    page.keyboard.press("Enter")
    expect(page.locator("#sign-in-problem")).to_contain_text("not a JWT")

    page.locator("#token").fill(token_for("auditor", sub="paste"))
    page.keyboard.press("Enter")
    expect(page.locator("#signed-in-as")).to_have_text("paste (auditor)")
    page.locator("#sign-out").click()
    expect(page.locator("#sign-in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    expect(page.locator("#sign-in")).to_be_visible()


def test_the_token_reaches_no_url_and_no_server_log(
    page: Page, console_server: tuple[str, Path], token_for: TokenFactory
) -> None:
    base_url, log_path = console_server
    token = token_for("admin", sub="logged")
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    sign_in_by_link(page, base_url, token)
    assert "token" not in page.url
    for name in ("Models", "Routes", "Audit trail", "Inference"):
        open_page(page, name)
    page.locator("#file").set_input_files(get_testdata_file("CT_small.dcm"))
    page.locator("#run").click()
    expect(page.locator("#answer-label")).to_be_visible()
    assert page.evaluate("history.length") >= 1 and "token" not in page.url

    assert urls and not [url for url in urls if token in url or "#token" in url]
    served = log_path.read_text()
    assert "GET /ui/" in served and "/infer/file" in served  # the log does record requests
    assert token not in served and token.split(".")[2] not in served


UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea, button")]
    .filter((el) => !el.hidden && el.type !== "hidden")
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
        && !(el.tagName === "BUTTON" && el.textContent.trim()))
    .map((el) => el.outerHTML)"""


def test_every_control_has_a_name_and_the_upload_works_by_keyboard(
    page: Page, base_url: str, token_for: TokenFactory
) -> None:
    sign_in_by_link(page, base_url, token_for("admin"))
    for name in ("Models", "Routes", "Audit trail", "Inference"):
        open_page(page, name)
        expect(page.locator("#main section h1")).to_be_visible()
        assert page.evaluate(UNLABELLED) == [], name

    # Enter on the drop zone opens the file picker (its input's click; the picker itself
    # is the browser's, so the test stops it there and picks the file as the picker would).
    page.evaluate(
        "document.getElementById('file').addEventListener('click', (event) => {"
        " event.preventDefault(); window.picking = true; })"
    )
    page.locator("#drop").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("window.picking === true")
    page.locator("#file").set_input_files(get_testdata_file("CT_small.dcm"))
    expect(page.locator("#chosen")).to_contain_text("CT_small.dcm")
    page.locator("#run").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#answer-label")).to_be_visible()
