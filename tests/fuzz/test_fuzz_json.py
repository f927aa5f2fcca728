"""Hostile-but-plausible requests to POST /infer and /infer/batch never get a 5xx.

Every 4xx is an RFC 9457 problem naming the field and the rule it broke; every 200
has exactly the response schema's keys. Bodies are written as raw JSON text, so
they can hold what ``json.dumps`` refuses to write: ``1e400``, a 5000-digit integer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from pydantic import BaseModel

from serve_app.auth.credentials import Credentials
from serve_app.schemas.infer import BatchInferResponse, InferResponse
from serve_app.settings import AuthSettings, Settings
from tests.images import infer_body, pixels
from tests.problems import PROBLEM_JSON


def fuzzed(max_examples: int) -> Any:
    return fuzz_settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@dataclass(frozen=True)
class Raw:
    """JSON text sent verbatim."""

    text: str

    def __repr__(self) -> str:
        return f"Raw({self.text[:12]!r}{'...' if len(self.text) > 12 else ''})"


def encode(value: Any) -> str:
    """JSON text of ``value``, with ``Raw`` tokens verbatim and NaN/Infinity allowed."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{encode(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        if not any(isinstance(v, Raw | dict | list) for v in value):
            return json.dumps(value)
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


# --- strategies --------------------------------------------------------------------------

RAW_NUMBERS = [
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1" + "0" * 400),  # 10**400
    Raw("-" + "9" * 400),
    Raw("9" * 5000),  # past Python's 4300-digit int parsing limit
    Raw("1E-400"),
    Raw("-0"),
    Raw("6.4e1"),
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
]
NUMBER_LIKE_TEXT = [
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    "1e400",
    "0x40",
    "",
    " 64 ",
    "\uff16\uff14",
    "64px",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=16),
    st.sampled_from(NUMBER_LIKE_TEXT),
    st.sampled_from(RAW_NUMBERS),
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)

sides = st.integers(64, 80)
dimensions = st.one_of(
    st.integers(-3, 3),
    st.integers(60, 84),
    st.integers(2045, 2052),
    st.sampled_from([2**31, 2**63, 2**64, 10**18]),
    st.floats(60, 84),
    st.integers(64, 80).map(float),
    st.integers(64, 80).map(str),
    st.sampled_from(RAW_NUMBERS),
    junk,
)
pixel_values = {
    "uint8": st.integers(0, 255),
    "uint16": st.integers(0, 65535),
    "float32": st.floats(0, 1),
    "float64": st.floats(0, 1),
}
hostile_pixels = st.one_of(
    st.sampled_from([-1, 256, 65536, 0.5, 1.5, 1e308, -1e308, 2**53 + 1, 10**30]),
    st.floats(),
    st.sampled_from(RAW_NUMBERS),
    st.sampled_from(NUMBER_LIKE_TEXT),
    junk,
)
MODELS = ["chest-xray-demo", "derm-demo", "derm-demo:1.0.0", "nope", "chest-xray-demo:9.9.9"]
"""Served models, then well-formed names of models not served (a 404)."""
field_values: dict[str, st.SearchStrategy[Any]] = {
    "width": dimensions,
    "height": dimensions,
    "channels": st.sampled_from([0, 2, 4, -1, 3.0, "1", True, None]) | junk,
    "dtype": st.sampled_from(["UINT8", "uint32", "int8", "float16", "bool", "", "uint8 "])
    | st.text(max_size=10)
    | junk,
    "patient_id": st.sampled_from(["", "x" * 129, "\x00", "\u202e", "😷"]) | st.text() | junk,
    "model": st.sampled_from(
        [
            "chest-xray-demo:9.9.9",
            "nope",
            "../../etc/passwd",
            "chest-xray-demo:",
            ":1.0.0",
            "a" * 65,
            "derm-demo:1.0.0+build",
            "CHEST-XRAY-DEMO",
            "derm-demo\n",
        ]
    )
    | st.text(max_size=80)
    | junk,
    "data": st.lists(junk, max_size=5) | junk,
}


MUTATIONS = ("set", "drop", "extra", "resize", "length", "poke")
PIXEL_MUTATIONS = ("resize", "length", "poke")
"""Edits the schema lets through, so that in a batch they fail one image, not the request."""


@st.composite
def hostile_image(
    draw: st.DrawFn, max_mutations: int = 3, kinds: tuple[str, ...] = MUTATIONS
) -> dict[str, Any]:
    """A valid pixel-list image, then up to ``max_mutations`` hostile edits of it."""
    width, height = draw(sides), draw(sides)
    channels = draw(st.sampled_from([1, 3]))
    dtype = draw(st.sampled_from(sorted(pixel_values)))
    pattern = draw(st.lists(pixel_values[dtype], min_size=1, max_size=4))
    size = width * height * channels
    body: dict[str, Any] = {
        "data": (pattern * (size // len(pattern) + 1))[:size],
        "width": width,
        "height": height,
        "channels": channels,
        "dtype": dtype,
    }
    if draw(st.booleans()):
        body["model"] = draw(st.sampled_from(MODELS))
    if draw(st.booleans()):
        body["patient_id"] = draw(st.text(min_size=1, max_size=16))
    for _ in range(draw(st.integers(0, max_mutations))):
        mutate(draw, body, draw(st.sampled_from(kinds)))
    return body


def mutate(draw: st.DrawFn, body: dict[str, Any], kind: str) -> None:
    data = body.get("data")
    if kind == "set":
        field = draw(st.sampled_from(sorted(field_values)))
        body[field] = draw(field_values[field])
    elif kind == "drop" and body:
        del body[draw(st.sampled_from(sorted(body)))]
    elif kind == "extra":
        body[draw(st.text(max_size=12))] = draw(junk)
    elif kind == "resize":
        # Declared size and data length agree, but the size is out of bounds or tiny.
        width, height = draw(st.integers(0, 100)), draw(st.integers(0, 100))
        channels = body["channels"] if body.get("channels") in (1, 3) else 1
        fill = data[0] if isinstance(data, list) and data else 0
        body.update(width=width, height=height, data=[fill] * (width * height * channels))
    elif kind == "length" and isinstance(data, list):
        delta = draw(st.sampled_from([-3, -2, -1, 1, 2, 3]))
        body["data"] = data[:delta] if delta < 0 else data + data[:delta]
    elif kind == "poke" and isinstance(data, list) and data:
        data = list(data)
        data[draw(st.integers(0, len(data) - 1))] = draw(hostile_pixels)
        body["data"] = data


def truncated(text: str) -> st.SearchStrategy[str]:
    return st.integers(0, max(len(text) - 1, 0)).map(lambda cut: text[:cut])


infer_payloads = st.one_of(
    hostile_image().map(encode),
    junk.map(encode),
    hostile_image(max_mutations=0).map(encode).flatmap(truncated),
    st.integers(1, 100_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 100_000).map(lambda depth: '{"data":' * depth + "1" + "}" * depth),
    st.binary(max_size=64),
)


@st.composite
def hostile_batch(draw: st.DrawFn) -> dict[str, Any]:
    images = hostile_image(max_mutations=2) | hostile_image(max_mutations=1, kinds=PIXEL_MUTATIONS)
    body: dict[str, Any] = {"images": draw(st.lists(images, max_size=4))}
    if draw(st.booleans()):
        body["priority"] = draw(st.sampled_from(["low", "normal", "high"]))
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["priority", "images", "image", "drop", "extra"]))
        if kind == "priority":
            body["priority"] = draw(st.sampled_from(["LOW", "urgent", ""]) | junk)
        elif kind == "images":
            body["images"] = draw(junk)
        elif kind == "image" and isinstance(body.get("images"), list):
            body["images"] = [*body["images"], draw(junk)]
        elif kind == "drop" and body:
            del body[draw(st.sampled_from(sorted(body)))]
        elif kind == "extra":
            body[draw(st.text(max_size=12))] = draw(junk)
    return body


batch_payloads = st.one_of(
    hostile_batch().map(encode),
    junk.map(lambda images: encode({"images": images})),
    hostile_batch().map(encode).flatmap(truncated),
)


# --- assertions ----------------------------------------------------------------------------


def assert_problem_document(problem: Any, status: int) -> str:
    """Check an RFC 9457 problem naming a field and rule; return ``"<status> <rule>"``."""
    assert isinstance(problem, dict), problem
    assert problem.get("status") == status, problem
    assert problem.get("type") and problem.get("title") and problem.get("detail"), problem
    errors = problem.get("errors")
    assert errors and errors[0].get("field") and errors[0].get("rule"), problem
    return f"{status} {errors[0]['rule']}"


def assert_schema(model: type[BaseModel], document: Any) -> BaseModel:
    assert isinstance(document, dict) and document.keys() == model.model_fields.keys(), document
    return model.model_validate(document)


def assert_sound(response: httpx.Response, success: type[BaseModel] = InferResponse) -> None:
    # NOTE: the events tell which rules a run reached (pytest --hypothesis-show-statistics).
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:1000]}"
    if status >= 400:
        assert response.headers["content-type"] == PROBLEM_JSON, response.headers
        event(assert_problem_document(response.json(), status))
        return
    assert status == 200, response.text[:1000]
    event("200")
    result = assert_schema(success, response.json())
    if isinstance(result, BatchInferResponse):
        assert result.total_images == len(result.results) == result.successful + result.failed
        for index, item in enumerate(result.results):
            assert item.index == index and item.status < 500, item
            if item.status == 200:
                assert item.result is not None and item.error is None, item
            else:
                assert item.result is None, item
                event("item " + assert_problem_document(item.error, item.status))


def post_json(
    client: TestClient, path: str, payload: str | bytes, **headers: str
) -> httpx.Response:
    return client.post(
        path, content=payload, headers={"content-type": "application/json", **headers}
    )


# --- bodies --------------------------------------------------------------------------------


@fuzzed(300)
@given(payload=infer_payloads)
def test_infer_answers_hostile_bodies_with_a_problem_never_a_5xx(
    fuzz_client: TestClient, payload: str | bytes
) -> None:
    assert_sound(post_json(fuzz_client, "/infer", payload))


@fuzzed(150)
@given(payload=batch_payloads)
def test_batch_answers_hostile_bodies_with_a_problem_never_a_5xx(
    fuzz_client: TestClient, payload: str
) -> None:
    assert_sound(post_json(fuzz_client, "/infer/batch", payload), BatchInferResponse)


content_types = st.one_of(
    st.sampled_from(
        [
            "application/json; charset=latin-1",
            "application/problem+json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
            "text/json",
            "application/octet-stream",
            "image/png",
            "",
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)


@fuzzed(60)
@given(content_type=content_types, path=st.sampled_from(["/infer", "/infer/batch"]))
def test_any_content_type_gets_a_problem_or_an_answer_never_a_5xx(
    fuzz_client: TestClient, content_type: str, path: str
) -> None:
    image = infer_body(pixels(1, 64, 64))
    body = {"images": [image]} if path == "/infer/batch" else image
    response = fuzz_client.post(
        path, content=json.dumps(body), headers={"content-type": content_type}
    )
    assert_sound(response, BatchInferResponse if path == "/infer/batch" else InferResponse)


# --- authorization -------------------------------------------------------------------------

header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=300
)
base64url_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_text(header: Any, payload: Any, key: bytes, signature: bytes | None = None) -> str:
    signing_input = f"{b64url(encode(header).encode())}.{b64url(encode(payload).encode())}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac if signature is None else signature)}"


@st.composite
def mangled(draw: st.DrawFn, token: str) -> str:
    """The accepted token, changed so that it must no longer verify."""
    segments = token.split(".")
    kind = draw(st.sampled_from(["cut", "first-char", "swap", "extend", "insert", "resign"]))
    if kind == "cut":
        return token[: -draw(st.integers(1, len(token)))]
    if kind == "first-char":
        i = draw(st.integers(0, 2))
        other = draw(st.sampled_from(base64url_alphabet).filter(lambda c: c != segments[i][0]))
        segments[i] = other + segments[i][1:]
    elif kind == "swap":
        segments[0], segments[1] = segments[1], segments[0]
    elif kind == "extend":
        segments.append(draw(st.text(base64url_alphabet, max_size=20)))
    elif kind == "insert":
        # NOTE: not "=": PyJWT accepts a signature with base64 padding; nor whitespace,
        # which the server strips from around the token.
        i = draw(st.integers(0, len(token)))
        return token[:i] + draw(st.sampled_from("!*+/.")) + token[i:]
    else:
        header = jwt.get_unverified_header(token)
        payload = jwt.decode(token, options={"verify_signature": False})
        payload["role"] = draw(st.sampled_from(["admin", payload["role"]]))
        return jwt_text(header, payload, b"not the server's key, but 32 bytes long")
    return ".".join(segments)


def forged_jwts(key: bytes) -> st.SearchStrategy[str]:
    """JWT-shaped text under a wrong key, ``alg: none``, or with junk JOSE headers."""
    header = st.fixed_dictionaries(
        {"alg": st.sampled_from(["HS256", "none", "None", "RS256", "HS512", ""]) | junk},
        optional={"typ": junk, "kid": junk, "crit": junk, "jku": st.just("http://evil/")},
    )
    payload = st.fixed_dictionaries(
        {"sub": st.just("mallory"), "role": st.just("admin"), "exp": st.just(2**40)}
    )
    return st.one_of(
        st.builds(jwt_text, header, payload | junk, st.just(key)),
        st.builds(jwt_text, header, payload, st.just(key), st.binary(max_size=40)),
        st.lists(st.text(base64url_alphabet, max_size=30), min_size=1, max_size=5).map(".".join),
    )


def authorizations(token: str) -> st.SearchStrategy[str]:
    schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", "JWT", "Bearer:"])
    separators = st.sampled_from([" ", "  ", "\t", ""])
    wrong_key = b"a key the server does not hold, 32+ bytes"
    return st.one_of(
        header_text,
        st.builds("{}{}{}".format, schemes, separators, header_text),
        mangled(token).map("Bearer {}".format),
        forged_jwts(wrong_key).map("Bearer {}".format),
        st.integers(1_000, 20_000).map(lambda n: "Bearer " + "a" * n),
        st.sampled_from(["Bearer", "Bearer ", "Bearer null", "Bearer undefined", f"Basic {token}"]),
    )


@fuzzed(200)
@given(data=st.data(), path=st.sampled_from(["/infer", "/infer/batch", "/infer/file"]))
def test_hostile_authorization_is_401_never_a_5xx(
    fuzz_client: TestClient, bearer: dict[str, str], data: st.DataObject, path: str
) -> None:
    token = bearer["Authorization"].removeprefix("Bearer ")
    value = data.draw(authorizations(token), label="authorization")
    response = fuzz_client.post(
        path,
        content=json.dumps(infer_body(pixels(1, 64, 64))),
        headers={"content-type": "application/json", "authorization": value.encode("latin-1")},
    )
    assert response.status_code == 401, f"{response.status_code}: {response.text[:1000]}"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_sound(response)


times = st.one_of(st.integers(), st.floats(), st.sampled_from(RAW_NUMBERS), junk)
hostile_claims = {
    "sub": st.sampled_from(["", " ", "\x00", "a\x7fb", "x" * 129, "x" * 128, "idp|x"])
    | st.text(max_size=20)
    | junk,
    "role": st.sampled_from(
        ["ADMIN", "", "root", "clinician ", "auditor", "monitor", "a" * 33, "a:b.c-d_9"]
    )
    | junk,
    # NOTE: a numeric string, a boolean and a float are time claims to PyJWT (int()).
    "exp": st.sampled_from([True, "99999999999", 99999999999.5, -1]) | times,
    "nbf": st.sampled_from([True, "99999999999", 99999999999.5, -1]) | times,
    "iat": st.sampled_from([True, "99999999999", 99999999999.5, -1]) | times,
    "iss": st.sampled_from(["https://idp.medai.test/", "https://evil.test"]) | junk,
    "aud": st.sampled_from([["x", "medai-flow"], ["medai-flow", 1], ["x"], "medai-flow "]) | junk,
}


@st.composite
def claims(draw: st.DrawFn, accepted: dict[str, Any]) -> dict[str, Any]:
    """The claims of an accepted token, in any role, then some replaced or dropped."""
    roles = st.sampled_from(["clinician", "ml_engineer", "auditor", "admin"])
    payload = {**accepted, "role": draw(roles)}
    for name in draw(st.lists(st.sampled_from(sorted(hostile_claims)), unique=True, max_size=3)):
        if name in payload and draw(st.booleans()):
            del payload[name]
        else:
            payload[name] = draw(hostile_claims[name])
    return payload


INFERRING_ROLES = {"clinician", "ml_engineer", "admin"}
"""The roles compliance/roles.md lets call /infer: any other well-formed role is a 403."""
CLAIM_FORMS = {
    "sub": (128, re.compile(r"[^\x00-\x1f\x7f]+")),
    "role": (32, re.compile(r"[A-Za-z0-9_.:-]+")),
}
"""The README's bounds on ``sub`` (128 characters, no control characters) and ``role``
(32 of letters, digits, ``_.:-``)."""


def numeric_date(value: Any) -> int | None:
    """A time claim as the server reads it, or None if it is not one.

    NOTE: PyJWT reads a time claim with ``int()``, so a boolean or a numeric string
    counts as one (``" 64 "`` is 64): a leniency the server inherits, stated here so that
    a change to it shows.
    """
    try:
        return int(value)
    except (ValueError, TypeError, OverflowError):
        return None


def expected_status(header_text: str, payload_text: str, auth: AuthSettings, now: float) -> int:
    """What POST /infer must answer a well-signed token with these claims: 200, 401 when a
    claim breaks a rule of the README's Authentication section, 403 when the role may not
    infer."""
    try:
        json.loads(header_text)
        claims = json.loads(payload_text)
    except ValueError:
        return 401  # not JSON as Python reads it (a 5000-digit integer, for one)
    required = ["sub", "role", "exp", "iss", "aud"]
    if not isinstance(claims, dict) or any(claims.get(name) is None for name in required):
        return 401
    audience = claims["aud"]
    audiences = [audience] if isinstance(audience, str) else audience
    if claims["iss"] != auth.issuer or not (
        isinstance(audiences, list)
        and all(isinstance(a, str) for a in audiences)
        and auth.audience in audiences
    ):
        return 401
    times = {name: numeric_date(claims[name]) for name in ("exp", "nbf", "iat") if name in claims}
    if None in times.values():
        return 401
    if times["exp"] <= now - auth.leeway_s or any(
        times.get(name, 0) > now + auth.leeway_s for name in ("nbf", "iat")
    ):
        return 401
    for name, (longest, form) in CLAIM_FORMS.items():
        value = claims[name]
        if not isinstance(value, str) or len(value) > longest or not form.fullmatch(value):
            return 401
    return 200 if claims["role"] in INFERRING_ROLES else 403


@fuzzed(150)
@given(
    data=st.data(), header=st.fixed_dictionaries({"alg": st.just("HS256")}, optional={"typ": junk})
)
def test_validly_signed_hostile_claims_get_exactly_the_status_their_claims_call_for(
    fuzz_client: TestClient,
    bearer: dict[str, str],
    settings: Settings,
    credentials: Credentials,
    data: st.DataObject,
    header: dict[str, Any],
) -> None:
    """A token the server's own key signed, with claims of any type: the issuer's mistake."""
    assert credentials.jwt_secret is not None
    accepted = jwt.decode(bearer["Authorization"][7:], options={"verify_signature": False})
    payload = data.draw(claims(accepted), label="claims")
    token = jwt_text(header, payload, credentials.jwt_secret.get_secret_value().encode())
    expected = expected_status(encode(header), encode(payload), settings.auth, time.time())
    event(f"expected {expected}")
    response = fuzz_client.post(
        "/infer",
        json=infer_body(pixels(1, 64, 64)),
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == expected, f"{response.status_code}: {response.text}"
    assert_sound(response)
