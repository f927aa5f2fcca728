"""Results, model versions and the audit trail in a SQL database, through tortoise-orm.

SQLite (a file under ``data_dir``) is the embedded default; PostgreSQL through asyncpg
for production. ``open_database`` creates or migrates the schema at start-up.
"""

from serve_app.storage.database import Database, database_url, open_database
from serve_app.storage.models import AuditLog, InferenceResult, ModelVersion

__all__ = [
    "AuditLog",
    "Database",
    "InferenceResult",
    "ModelVersion",
    "database_url",
    "open_database",
]
