"""The one settings object.

Environment variables use the prefix ``MEDAI_`` and ``__`` between groups
(``MEDAI_LIMITS__MAX_SIDE=4096``). ``deployments.app.build_app`` builds it
once, with the application ``args`` of ``serve_config.yaml`` as overrides,
and hands it to every deployment. Nothing reads configuration at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class LimitsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    max_body_bytes: int = 50 * 1024 * 1024
    """Largest request body accepted, in bytes (413 beyond)."""
    max_json_body_bytes: int = 20 * 1024 * 1024
    """Largest JSON body of ``POST /infer`` and ``/infer/batch``, in bytes (413 beyond; the
    smaller of this and ``max_body_bytes`` holds). A 2048x2048 grey uint8 image written as
    a JSON list is ~18 MiB and costs the ingress ~0.5 GiB while it is parsed; larger
    images go as files to ``/infer/file``."""
    max_model_bytes: int = 512 * 1024 * 1024
    """Largest model upload (``POST /models``) accepted, in bytes (413 beyond)."""
    model_inspect_memory_bytes: int = Field(4 * 1024**3, ge=256 * 1024**2)
    """Address space (``RLIMIT_AS``) of the child process that inspects an upload: parses
    it, loads it and runs it on a zero input; a model needing more is a 422
    ``memory-limit``. Leave room for about three copies of ``max_model_bytes``."""
    model_inspect_cpu_s: int = Field(60, ge=1, le=3600)
    """CPU seconds (``RLIMIT_CPU``) that child may use (422 ``cpu-limit`` beyond)."""
    model_inspect_timeout_s: float = Field(120, gt=0, le=3600)
    """Wall-clock seconds that child may take before it is killed (422 ``time-limit``)."""
    min_side: int = 64
    """Smallest accepted image width or height, in pixels."""
    max_side: int = 2048
    """Largest accepted image width or height, in pixels (checked before decoding)."""
    max_batch_images: int = 100
    """Most images accepted in one ``/infer/batch`` request."""


class DecodingSettings(BaseModel):
    """Uploaded files (``/infer/file``) are decoded in disposable child processes.

    A file that breaks a limit costs one worker and answers 422 (rule
    ``decoder-limit``); the worker is replaced and other requests are unaffected.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    isolated: list[Literal["png", "jpeg", "dicom"]] = ["dicom"]
    """Formats decoded in a worker; the others in the preprocessing replica. PNG and JPEG
    are decoded by Pillow at the size their header declares, checked first; a worker
    costs ~0.5-1.6 ms more CPU per file (measured 2026-12-01), so only DICOM by default."""
    workers: int = Field(2, ge=1, le=64)
    """Decoder processes per preprocessing replica (files decoded at once), started with
    the replica; a spent one is replaced on demand."""
    memory_bytes: int = Field(1024 * 1024 * 1024, ge=16 * 1024 * 1024)
    """Address space a worker may map beyond its own libraries (``RLIMIT_AS``), in bytes:
    the largest decode the limits allow needs about 0.5 GiB."""
    cpu_s: float = Field(10.0, gt=0, le=600)
    """CPU seconds one file may take to decode (``RLIMIT_CPU``)."""
    timeout_s: float = Field(30.0, gt=0, le=600)
    """Wall-clock seconds a request waits for its file to be decoded."""


class RuntimeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto`` uses CUDA when the replica was given a GPU (``num_gpus`` in the model
    deployment's ``ray_actor_options``, fractions too), the CPU otherwise. A replica that
    cannot start CUDA runs on the CPU and says so (log, ``/readyz?verbose=true``)."""
    tensorrt: bool = False
    """Put ONNX Runtime's TensorRT execution provider ahead of CUDA on a GPU: engines are
    built on a version's first load (minutes for a large model) and kept in
    ``tensorrt_cache_dir``; operators TensorRT cannot take run on CUDA."""
    tensorrt_fp16: bool = False
    """Let TensorRT build half-precision engines (faster; answers may differ in the 3rd
    decimal: validate the version with it on before promoting)."""
    tensorrt_cache_dir: Path | None = None
    """Where TensorRT engines are kept between loads (``None``: ``<data_dir>/tensorrt-engines``)."""
    gpu_memory_limit_bytes: int | None = Field(None, ge=64 * 1024 * 1024)
    """Most GPU memory CUDA's arena of one session may hold; set it when replicas share a
    GPU (fractional ``num_gpus``), which Ray does not enforce. ``None``: no limit."""
    intra_op_threads: int = 0
    """ONNX Runtime threads inside one operator; 0 lets ONNX Runtime choose."""
    inter_op_threads: int = 1
    """ONNX Runtime threads across operators (sequential execution uses 1)."""
    max_loaded_versions: int = Field(4, ge=2, le=64)
    """Versions of one model each model replica keeps loaded (least recently used goes):
    production, the one it replaced, and the versions routes send requests to."""


class HopSettings(BaseModel):
    """How the ingress coalesces concurrent requests into one call to the preprocessing pool."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    max_batch_size: int = Field(32, ge=1, le=256)
    """Most requests carried by one ingress-to-preprocessor message (1 turns coalescing off)."""
    batch_wait_timeout_s: float = Field(0.0, ge=0, le=0.1)
    """How long the first request waits for company; 0 takes whatever is already queued."""


JwtAlgorithm = Literal["HS256", "RS256", "ES256"]


def _hs256_only() -> list[JwtAlgorithm]:
    return ["HS256"]


class AuthSettings(BaseModel):
    """Bearer-token (JWT) authentication at the ingress.

    Keys are not settings: the HS256 secret comes from ``MEDAI_JWT_SECRET`` or a
    ``medai_jwt_secret`` file in ``secrets_dir``, loaded inside each replica.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    algorithms: list[JwtAlgorithm] = Field(default_factory=_hs256_only, min_length=1)
    """Accepted JWT algorithms, pinned: ``HS256`` (shared secret) or ``RS256``/``ES256``
    (public key or JWKS file); the two families never mix."""
    public_key_file: Path | None = None
    """PEM public key verifying RS256/ES256 tokens."""
    jwks_file: Path | None = None
    """JWKS file verifying RS256/ES256 tokens; the token's ``kid`` picks the key."""
    issuer: str | None = None
    """Required ``iss`` claim, checked when set."""
    audience: str | None = None
    """Required ``aud`` claim, checked when set."""
    leeway_s: float = Field(30, ge=0, le=300)
    """Clock skew tolerated on ``exp``, ``nbf`` and ``iat``, in seconds."""
    max_token_bytes: int = Field(8192, ge=256, le=65536)
    """Longest bearer token accepted (401 beyond, before any parsing)."""
    token_ttl_s: int = Field(3600, ge=60, le=30 * 86400)
    """Lifetime of tokens minted by ``medai token`` when ``--ttl`` is not given."""
    secrets_dir: Path | None = None
    """Directory of secret files (Kubernetes/Docker secrets), read when the
    environment variable is unset."""
    failure_window_s: float = Field(10.0, gt=0, le=3600)
    """Failed authentications are audited in aggregate: one ``auth.failure`` entry per
    rule and client address per this many seconds, with the count."""
    max_failure_keys: int = Field(1024, ge=1, le=100_000)
    """Most (rule, client) pairs counted in one window; further clients' failures are
    merged into one ``*`` client per rule, so memory stays bounded under a flood."""

    @model_validator(mode="after")
    def _one_key_family(self) -> AuthSettings:
        symmetric = {a.startswith("HS") for a in self.algorithms}
        if len(symmetric) > 1:
            raise ValueError("auth.algorithms: HS256 cannot be mixed with RS256/ES256")
        if symmetric == {False} and (self.public_key_file is None) == (self.jwks_file is None):
            raise ValueError("auth: RS256/ES256 need exactly one of public_key_file, jwks_file")
        return self


class RateLimitSettings(BaseModel):
    """Per-user token bucket at the ingress (429 with ``Retry-After`` when empty)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    enabled: bool | None = None
    """On or off; unset turns it on in production and off in development."""
    requests_per_second: float = Field(50.0, gt=0)
    """Sustained requests per second per user (token ``sub``)."""
    burst: int = Field(100, ge=1)
    """Requests a user may send at once after being idle."""
    unauthenticated_per_second: float = Field(2.0, gt=0)
    """Sustained failed authentications per second per client address; beyond, the
    address gets 429 with ``Retry-After`` instead of 401."""
    unauthenticated_burst: int = Field(20, ge=1)
    """Failed authentications a client address may make at once after being idle."""


DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "asyncpg")


class StorageSettings(BaseModel):
    """Where results and the audit trail are kept (tortoise-orm)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    database_url: str | None = None
    """``sqlite:///path/file.sqlite3`` or ``postgres://user@host:5432/db`` (asyncpg); unset
    uses the SQLite file ``data_dir/medai.sqlite3``. No password here: PostgreSQL reads it
    from ``PGPASSWORD`` or a ``PGPASSFILE``."""

    @field_validator("database_url")
    @classmethod
    def _supported_and_secret_free(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in DATABASE_SCHEMES:
            raise ValueError(f"storage.database_url: scheme must be one of {DATABASE_SCHEMES}")
        if parts.password:
            raise ValueError("storage.database_url: no password in the URL; use PGPASSWORD")
        return url

    lock_timeout_s: float = Field(5.0, gt=0, le=600)
    """PostgreSQL: how long an audit write waits for the chain's lock before it fails with
    503 (nothing stored), rather than queueing behind a stuck transaction for ever."""
    statement_timeout_s: float = Field(30.0, gt=0, le=3600)
    """PostgreSQL: longest statement of an audit write; a longer one is cancelled (503,
    nothing stored)."""


class AuditSettings(BaseModel):
    """Signed checkpoints of the audit hash chain.

    The signing key is a secret (``MEDAI_AUDIT_SIGNING_KEY``), not a setting.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    checkpoint_file: Path | None = None
    """Append-only JSON-lines file of signed checkpoints, kept apart from the database;
    unset uses ``data_dir/audit/checkpoints.jsonl``."""
    checkpoint_copies: list[Path] = Field(default_factory=list)
    """More append-only files that get every checkpoint: put one where the database's
    administrators cannot rewrite it (another host's mount, an object store with
    retention). Verification requires every copy to agree with the file."""
    trusted_public_keys: list[str] = Field(default_factory=list)
    """Public keys (base64, raw Ed25519; ``medai audit public-key`` prints the current
    one) of earlier signing keys, so checkpoints signed before a rotation verify."""
    checkpoint_every_entries: int = Field(1000, ge=1)
    """The writer signs a checkpoint at least once per this many new audit entries."""
    checkpoint_every_s: float = Field(10.0, gt=0)
    """The writer also signs one at least this often, in seconds, while entries arrive."""
    max_batch_events: int = Field(512, ge=1)
    """Most audit events group-committed in one transaction."""
    unsigned_grace_s: float = Field(30.0, ge=0)
    """Slack on how long entries may stay unsigned (two signing periods plus this):
    past it verification fails as overdue, and a starting writer refuses a longer
    unsigned tail as a gap until an operator re-anchors."""
    lease_wait_s: float = Field(5.0, ge=0, le=300)
    """How long a writer waits for the single-writer lease (another writer, e.g. the old
    one during a rolling update, holds it) before answering 503 and trying again later."""
    batch_wait_timeout_s: float = Field(0.0, ge=0)
    """How long the writer waits for more events before committing; 0 commits whatever
    is queued (under load, events queue while the previous commit runs)."""
    enabled: bool = True
    """Off only to measure what persistence costs: nothing is stored or audited and the
    record routes answer 503. Refused in production."""
    call_timeout_s: float = Field(60.0, gt=0, le=600)
    """Longest the ingress waits for any call to the audit writer (a write, a read, a
    verification). A write that times out is answered 503 naming its outcome as unknown
    and the inference ids to look up: it may have been committed."""


class RegistrySettings(BaseModel):
    """How the serving path follows the registry."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    poll_interval_s: float = Field(1.0, gt=0, le=60)
    """How often each preprocessing replica asks the registry which version of each model
    serves and how endpoints route; a promotion, rollback or route change takes effect
    within about this long. A request naming what a replica does not serve yet (a new
    endpoint) makes it ask at once."""
    max_shadows_in_flight: int = Field(4, ge=0, le=4096)
    """Shadow copies each preprocessing replica runs at once; more are dropped (and
    counted in ``medai_shadow_copies``), never queued ahead of answers. Light load gets a copy of
    every request; heavy load a sample, so the copies' work stays small beside the
    answers'."""


class ModelConfig(BaseModel):
    """One served model: its replicas are the deployment ``model-<name>``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    version: str | None = None
    """Version to start with; ``None`` starts with the first version the store held for
    the name. A served model with no registered version is adopted at that version as
    production; from then on it serves its production version in the registry."""
    max_batch_size: int = Field(16, ge=1, le=1024)
    """Largest dynamic batch one ONNX Runtime call takes."""
    batch_wait_timeout_s: float = Field(0.0, ge=0, le=1)
    """How long the first request to an idle model waits for company (the runner's combiner
    runs it sooner once ``max_batch_size`` images queue). 0 runs it at once: while the model
    is busy, requests queue and run together anyway (measured: a 2 ms wait cost
    chest-xray-demo 5.7 ms at p50 with one client, and bought no throughput)."""
    max_concurrent_batches: int = Field(1, ge=1, le=64)
    """ONNX Runtime calls one replica runs at once, each in its own thread on one shared
    session; the next call takes everything queued meanwhile."""
    intra_op_threads: int | None = Field(None, ge=0, le=256)
    """ONNX Runtime threads per call for this model; ``None`` uses ``runtime.intra_op_threads``."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MEDAI_",
        env_nested_delimiter="__",
        extra="forbid",
        use_attribute_docstrings=True,
    )

    environment: Literal["development", "production"] = "development"
    """Deployment kind; ``production`` refuses development defaults (generated development
    secrets; RS256/ES256 without ``auth.issuer`` and ``auth.audience``), turns rate limiting
    on, and serves neither the OpenAPI docs nor public ``/metrics``."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Level of the JSON logs of ``serve_app`` and ``deployments``."""
    data_dir: Path = REPO_ROOT / "data"
    """Directory for local state: generated development secrets (``dev-secrets/``), the
    default SQLite database and audit checkpoints."""
    model_store: Path = REPO_ROOT / "model_store"
    """Directory of the content-addressed model store (``blobs/`` + ``catalog.json``)."""
    models: list[ModelConfig] = Field(
        default_factory=lambda: [ModelConfig(name="chest-xray-demo"), ModelConfig(name="derm-demo")]
    )
    """Models served, each by its own deployment with its own batching."""
    default_model: str = "chest-xray-demo"
    """Model used when a request names none."""
    docs: bool | None = None
    """Serve the OpenAPI schema and docs (``/openapi.json``, ``/docs``, ``/redoc``); unset
    serves them in development and not in production."""
    public_metrics: bool | None = None
    """Serve ``/metrics`` without a token; unset makes it public in development and, in
    production, requires a token whose role grants ``metrics:read`` (monitor, admin)."""
    limits: LimitsSettings = LimitsSettings()
    decoding: DecodingSettings = DecodingSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    hops: HopSettings = HopSettings()
    auth: AuthSettings = AuthSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    storage: StorageSettings = StorageSettings()
    audit: AuditSettings = AuditSettings()
    registry: RegistrySettings = RegistrySettings()

    @model_validator(mode="after")
    def _default_model_is_served(self) -> Settings:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models: duplicate names in {names}")
        if self.default_model not in names:
            raise ValueError(f"default_model {self.default_model!r} is not among models {names}")
        return self

    @model_validator(mode="after")
    def _production_keeps_the_audit_trail(self) -> Settings:
        if self.production and not self.audit.enabled:
            raise ValueError("audit.enabled: production must keep the audit trail")
        return self

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def docs_served(self) -> bool:
        return (not self.production) if self.docs is None else self.docs

    @property
    def metrics_public(self) -> bool:
        return (not self.production) if self.public_metrics is None else self.public_metrics

    @property
    def rate_limited(self) -> bool:
        enabled = self.rate_limit.enabled
        return self.production if enabled is None else enabled

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)
