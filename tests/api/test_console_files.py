"""The console's files over HTTP: public, each with the security headers; nothing outside
its folder reachable by any path; no inline script and no third-party origin in them.
Against the in-process app and the app served by Ray (no browser: tests/browser drives one).
"""

from __future__ import annotations

import http.client
import re
import tomllib
from urllib.parse import urlsplit

import httpx
import pytest

from serve_app.auth.rbac import GRANTS
from serve_app.http.console import STATIC, static_files
from serve_app.settings import REPO_ROOT
from tests.api.test_auth import send
from tests.api.test_body_streaming import uvicorn_app  # noqa: F401  (a server)
from tests.problems import assert_problem

pytestmark = pytest.mark.timeout(120)

FILES = sorted(static_files())
TRAVERSALS = [
    "/ui/%2e%2e/%2e%2e/pyproject.toml",
    "/ui/..%2f..%2fpyproject.toml",
    "/ui/%2e%2e%2f%2e%2e%2fserve_app%2fsettings.py",
    "/ui/js/%2e%2e/%2e%2e/http/console.py",
    "/ui/%2fetc%2fpasswd",
    "/ui//etc/passwd",
    "/ui/..%5c..%5cpyproject.toml",
    "/ui/index.html%00.py",
    "/ui/js",
    "/ui/README.md",
]
LITERAL_TRAVERSALS = [
    "/ui/../pyproject.toml",
    "/ui/../../etc/passwd",
    "/ui/js/../../http/console.py",
]
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def assert_secured(response: httpx.Response) -> None:
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'" and "unsafe" not in policy
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["", *FILES])
def test_every_file_is_public_and_secured(api: httpx.Client, path: str) -> None:
    response = send(api, None, "GET", f"/ui/{path}")
    assert response.status_code == 200, response.text
    assert_secured(response)
    suffix = (path or "index.html").rsplit(".", 1)[1]
    expected = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[suffix]
    assert response.headers["content-type"].startswith(expected)


def test_ui_redirects_to_its_folder(api: httpx.Client) -> None:
    response = api.get("/ui", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/ui/"
    assert_secured(response)


def test_the_config_is_derived_from_the_code(api: httpx.Client) -> None:
    config = send(api, None, "GET", "/ui/config.json").json()
    assert config["grants"] == {r.value: sorted(p.value for p in g) for r, g in GRANTS.items()}
    assert config["promotions"]["validation"] == ["production", "retired"]
    assert "chest-xray-demo" in config["models"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_leaves_the_folder(api: httpx.Client, path: str) -> None:
    response = send(api, None, "GET", path)
    assert_problem(response, 404, "path", "exists")
    assert_secured(response)


def raw_get(base_url: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` byte for byte: HTTP clients would resolve its ``..`` first."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(params=["uvicorn", pytest.param("served", marks=pytest.mark.serve)])
def live(request: pytest.FixtureRequest) -> str:
    if request.param == "uvicorn":
        return request.getfixturevalue("uvicorn_app")[0]
    return request.getfixturevalue("served")


@pytest.mark.parametrize("path", [*LITERAL_TRAVERSALS, "/ui/../models", "/ui/../audit"])
def test_dot_segments_sent_raw_reach_nothing(live: str, path: str) -> None:
    """Nor do they reach another route past the token check, which lets ``/ui/`` by."""
    status, body = raw_get(live, path)
    assert status in (400, 404), body
    assert b"[project]" not in body and b"root:" not in body and b"entries" not in body


def test_no_inline_script_style_or_other_origin() -> None:
    index = (STATIC / "index.html").read_text()
    assert all(re.search(r'\ssrc="[^"/:]', tag) for tag in re.findall(r"<script[^>]*>", index))
    assert not re.search(r"<script[^>]*>\s*[^<\s]", index)  # no inline body
    for name in FILES:
        text = (STATIC / name).read_text()
        assert not re.search(r"\son[a-z]+\s*=|\sstyle\s*=", text, re.IGNORECASE), name
        assert not re.search(r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write", text), (
            name
        )
        assert set(re.findall(r"https?://[^\s\"'`)]+", text)) <= {SVG_NAMESPACE}, name


def test_every_imported_module_is_served() -> None:
    for name in FILES:
        for imported in re.findall(r'from "(\.[^"]+)"', (STATIC / name).read_text()):
            target = (STATIC / name).parent.joinpath(imported).resolve().relative_to(STATIC)
            assert target.as_posix() in FILES, f"{name} imports {imported}"


def test_a_wheel_carries_every_console_file() -> None:
    """The container image installs a wheel: the package data must name every file."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["serve_app"]
    package = REPO_ROOT / "serve_app"
    packaged = {
        path.relative_to(STATIC).as_posix()
        for pattern in patterns
        for path in package.glob(pattern)
        if path.is_relative_to(STATIC)
    }
    assert packaged == set(FILES)
