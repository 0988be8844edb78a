"""PostgreSQL DSNs as the store and the CLI read them, without the PostgreSQL driver: a
service or command on SQLite never imports asyncpg."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

__all__ = ["is_postgres_dsn", "redact_dsn"]


def is_postgres_dsn(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))


def redact_dsn(dsn: str) -> str:
    """`postgresql://host:port/database`: what messages may show of a DSN."""
    try:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        host = parts.hostname or query.get("host", ["localhost"])[0]
        port = parts.port or int(query.get("port", ["5432"])[0])
    except ValueError:
        return "postgresql://(unparsable DSN)"
    database = parts.path.lstrip("/") or query.get("dbname", [""])[0] or "(default database)"
    return f"postgresql://{host}:{port}/{database}"
