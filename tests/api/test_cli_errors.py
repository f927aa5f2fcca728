"""``medai models|routes`` error paths: 4xx answers printed plainly with exit 1, a server
that is down, silent or behind a proxy's error page with exit 2 or 1 and no traceback,
bad arguments refused by the parser with exit 2. Against a running server (uvicorn), and
a stand-in for a reverse proxy (the boundary a real deployment has)."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from medai_cli.main import main
from tests.api.test_body_streaming import uvicorn_app  # noqa: F401  (the server)
from tests.conftest import TokenFactory

pytestmark = pytest.mark.timeout(180)


def run(
    capsys: pytest.CaptureFixture[str], url: str, token: str, *args: str
) -> tuple[int, str, str]:
    code = main([*args, "--url", url, "--token", token, "--timeout", "5"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (("routes", "delete", "{unknown}"), 404, "no route for endpoint"),
        (("routes", "show", "{unknown}"), 404, "no route for endpoint"),
        (("routes", "stats", "{unknown}", "--since", "yesterday"), 422, ""),
        (("models", "promote", "{unknown}", "1", "--to", "validation"), 404, "not registered"),
        (("models", "rollback", "{unknown}", "--to", "1"), 404, "not registered"),
        (("models", "list", "--name", "../etc"), 422, ""),
        (("routes", "delete", "bad name"), 422, ""),
    ],
    ids=["delete", "show", "stats-since", "promote", "rollback", "list-name", "delete-name"],
)
def test_client_errors_are_printed_plainly_with_exit_1(
    uvicorn_app: tuple[str, int],  # noqa: F811
    token_for: TokenFactory,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    status: int,
    says: str,
) -> None:
    unknown = f"cli-none-{uuid.uuid4().hex[:8]}"
    argv = [a.format(unknown=unknown) for a in args]

    code, out, err = run(capsys, uvicorn_app[0], token_for("ml_engineer"), *argv)

    assert code == 1
    assert out == ""
    assert err.startswith(f"medai: {status}: ") and says in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_a_role_without_the_permission_is_a_plain_403(
    uvicorn_app: tuple[str, int],  # noqa: F811
    token_for: TokenFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, uvicorn_app[0], token_for("clinician"), "routes", "show")

    assert code == 1 and err.startswith("medai: 403: ")


def test_a_server_that_is_down_is_exit_2(
    token_for: TokenFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "http://127.0.0.1:9", "t", "routes", "delete", "ab")

    assert code == 2 and "did not answer" in err and "Traceback" not in err


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_server_that_never_answers_is_exit_2_after_the_timeout(
    silent_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["models", "list", "--url", silent_server, "--token", "t", "--timeout", "0.5"])

    assert code == 2 and "did not answer" in capsys.readouterr().err


class ProxyErrorPage(BaseHTTPRequestHandler):
    """What nginx or a load balancer answers when the server behind it is gone."""

    def do_GET(self) -> None:
        self._page()

    def do_DELETE(self) -> None:
        self._page()

    def _page(self) -> None:
        body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ProxyErrorPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("args", [("models", "list"), ("routes", "delete", "ab")])
def test_a_proxy_error_page_is_printed_plainly_with_exit_1(
    proxy: str, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, proxy, "t", *args)

    assert code == 1 and out == ""
    assert err.startswith("medai: 502: <html>") and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("routes", "set", "ab", "--arm", "chest:1=heavy"), "is not name:version=weight"),
        (("routes", "set", "ab"), "--arm"),
        (("routes", "set", "ab", "--arm", "chest:1", "--sticky-key", "mrn"), "invalid choice"),
        (("routes", "stats", "ab", "--limit", "many"), "invalid int value"),
        (("models", "promote", "chest", "1", "--to", "approved"), "invalid choice"),
        (("models", "promote", "chest", "1"), "--to"),
        (("models", "rollback", "chest"), "--to"),
        (("models", "register", "--name", "x", "--version", "1"), "file"),
    ],
    ids=["arm-weight", "no-arm", "sticky-key", "limit", "to", "no-to", "no-rollback-to", "no-file"],
)
def test_bad_arguments_are_refused_before_any_request_with_exit_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*args, "--url", "http://127.0.0.1:9", "--token", "t"])

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and says in err and "did not answer" not in err
