"""How driftbot logs: JSON lines in production, readable lines in a terminal, secrets masked.

`configure_logging` installs one handler on the root logger, writing to stderr (stdout carries
only notifications). `json` gives one object per line: `time` (RFC 3339, UTC), `level`,
`logger`, `message`, the context fields a call passed (`cluster`, `namespace`, `name`,
`receiver`, ...) and `exception` for a traceback. `text` gives `LEVEL logger: message` with the
context fields appended in brackets, one line per record: control characters in any field are
escaped (`\\n`), a traceback's lines are indented below it.

Lines about one object pass its identity with `extra=about(cluster, namespace, name)`:
`LogRecord` reserves the attribute `name` (the logger's), so the object's name travels as
`object_name` and is written as `name`.

Secrets are kept out of logs where they are used (SecretStr, `WebhookUrl`, error texts that
name a variable rather than its value); `SecretFilter` is the last line of defence: every
configured secret value, and its URL-encoded and base64 forms, is masked in the message, its
arguments, the context fields and the exception text before any handler formats the record.
"""

from __future__ import annotations

import base64
import logging
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import orjson

from config.schema import Config

__all__ = [
    "MASK",
    "JsonFormatter",
    "SecretFilter",
    "TextFormatter",
    "about",
    "about_object",
    "add_secrets",
    "configure_logging",
    "escape_control",
    "reset_logging",
    "secret_variants",
    "secrets_from",
]

LogFormat = Literal["text", "json"]

MASK = "[redacted]"

MIN_SECRET_LENGTH = 4
"""Shorter values are not masked: they would mangle ordinary words and protect nothing."""

OBJECT_NAME = "object_name"
"""The record attribute that carries an object's name (see the module docstring)."""

_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}

SECRET_ENV_NAMES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")
SECRET_NAME_PARTS = ("TOKEN", "SECRET", "PASSWORD", "WEBHOOK", "DSN", "API_KEY", "APIKEY")
"""Any environment variable whose name holds one of these is taken to hold a secret too: a
config reloaded later may name it."""


def about(cluster: str, namespace: str = "", name: str = "", **more: Any) -> dict[str, Any]:
    """The `extra` of a log call about one object: its cluster, namespace and name."""
    return {"cluster": cluster, "namespace": namespace, OBJECT_NAME: name, **more}


def about_object(cluster: str, obj: object, **more: Any) -> dict[str, Any]:
    """`about` for a raw Kubernetes object, from its metadata (blank where it has none)."""
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    if not isinstance(metadata, Mapping):
        metadata = {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    return about(
        cluster,
        namespace if isinstance(namespace, str) else "",
        name if isinstance(name, str) else "",
        **more,
    )


def _context(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call added with `extra` (or an adapter), by their output names."""
    fields: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _RECORD_ATTRIBUTES or key.startswith("_"):
            continue
        fields["name" if key == OBJECT_NAME else key] = value
    return fields


def _utc(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _context(record).items():
            line.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control(text: str) -> str:
    """`text` on one line: newlines, carriage returns and every other control character
    written as escapes (`\\n`, `\\x1b`, `\\u2028`), so no value can start a line of its own."""

    def escaped(match: re.Match[str]) -> str:
        char = match.group()
        if char in _NAMED:
            return _NAMED[char]
        return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"

    return _CONTROL.sub(escaped, text)


def _indented(block: str) -> str:
    """A traceback below its line: every line indented and escaped, so an exception's text
    cannot pass for a record of its own."""
    return "\n".join("    " + escape_control(line) for line in block.splitlines())


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message [key=value ...]`, and the traceback below, indented, for a
    terminal. A context value the message already names is not repeated. Every record is one
    line (with its traceback's lines indented below it): control characters in the message and
    in every field are escaped, so text from the network (a cluster name, a header) cannot
    forge a line."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        text = f"{record.levelname} {escape_control(record.name)}: {escape_control(message)}"
        fields = {
            k: v
            for k, v in _context(record).items()
            if v not in ("", None) and str(v) not in message
        }
        if fields:
            text += (
                " ["
                + " ".join(
                    f"{escape_control(k)}={escape_control(str(v))}" for k, v in fields.items()
                )
                + "]"
            )
        return text

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        text = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + _indented(record.exc_text)
        if record.stack_info:
            text += "\n" + _indented(self.formatStack(record.stack_info))
        return text


def secret_variants(secret: str) -> set[str]:
    """The forms a secret can take in text: itself, URL-encoded, and base64 (with and without
    padding, standard and URL-safe alphabets)."""
    if len(secret) < MIN_SECRET_LENGTH:
        return set()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    encoded = base64.b64encode(secret.encode())
    for text in (encoded, base64.urlsafe_b64encode(secret.encode())):
        forms.add(text.decode())
        forms.add(text.decode().rstrip("="))
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class SecretFilter(logging.Filter):
    """Masks every configured secret in a record; installed on the handlers, so it sees the
    records of every logger. `update` replaces the secrets (after a config reload)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._pattern: re.Pattern[str] | None = None
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        self.secrets = list(dict.fromkeys(secrets))
        forms: set[str] = set()
        for secret in self.secrets:
            forms |= secret_variants(secret)
        # Longest first: a secret that contains another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def mask(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be shown
            message = f"{record.msg!r} {record.args!r}"
        record.msg = self.mask(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        for key, value in _context(record).items():
            attr = OBJECT_NAME if key == "name" else key
            if isinstance(value, str):
                setattr(record, attr, self.mask(value))
            elif value is not None and not isinstance(value, int | float | bool):
                setattr(record, attr, self.mask(str(value)))
        return True


def _dsn_password(dsn: str) -> str:
    try:
        return urlsplit(dsn).password or ""
    except ValueError:
        return ""


URL_SECRET_PARAMETERS = frozenset({"sig", "signature", "token", "code", "key", "access_token"})
"""Query parameters that make a webhook URL a secret (Workflows' `sig`, Azure's `code`)."""


def _url_secrets(url: str) -> list[str]:
    """A webhook URL and its signing parameters (`sig=` ...): each is a secret."""
    found = [url]
    try:
        query = parse_qsl(urlsplit(url).query)
    except ValueError:
        return found
    return found + [v for k, v in query if k.lower() in URL_SECRET_PARAMETERS and v]


def _base64_decoded(value: str) -> list[str]:
    try:
        raw = base64.b64decode(value, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return []
    return [raw] if raw.isprintable() else []


def secrets_from(config: Config | None, environ: Mapping[str, str]) -> list[str]:
    """Every secret value this process can hold: the Slack tokens and signing secret, Teams
    webhook URLs (and their signatures) and the Teams outgoing webhook token, the Flux webhook
    token, the Argo CD API tokens, and the store DSN's password."""
    names: list[str] = list(SECRET_ENV_NAMES)
    names += [n for n in environ if any(part in n.upper() for part in SECRET_NAME_PARTS)]
    files: list[str] = []
    if config is not None:
        names += [entry.token_env for entry in config.argocd_api]
        for receiver in config.receivers:
            if receiver.teams is not None and receiver.teams.webhook_env:
                names.append(receiver.teams.webhook_env)
            if receiver.teams is not None and receiver.teams.webhook_file:
                files.append(receiver.teams.webhook_file)
        if config.server.flux_webhook_token_env:
            names.append(config.server.flux_webhook_token_env)
        if config.teams.outgoing_webhook_secret_env:
            names.append(config.teams.outgoing_webhook_secret_env)
    values = [environ.get(n, "").strip() for n in dict.fromkeys(names)]
    for path in files:
        try:
            values.append(Path(path).read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            continue
    secrets: list[str] = []
    for value in filter(None, values):
        secrets += _url_secrets(value) if "://" in value else [value]
        secrets += _base64_decoded(value)
    for name in names:
        password = _dsn_password(environ.get(name, "")) if "://" in environ.get(name, "") else ""
        if password:
            secrets.append(password)
    return list(dict.fromkeys(s for s in secrets if s))


def configure_logging(
    fmt: LogFormat = "text",
    level: str | int = "INFO",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> SecretFilter:
    """Send every log record to `stream` (stderr) in `fmt`, at `level`, secrets masked.

    Calling it again replaces the handler it installed. When logging is already configured by
    someone else (an embedding program, a test runner) and no `stream` is given, their
    handlers are kept as they are and only get the secret filter. Returns the filter, whose
    `update` takes new secrets."""
    global _active
    redactor = _active = SecretFilter(secrets)
    root = logging.getLogger()
    reset_logging()
    if root.handlers and stream is None:
        for handler in root.handlers:
            for old in [f for f in handler.filters if isinstance(f, SecretFilter)]:
                handler.removeFilter(old)
            handler.addFilter(redactor)
        return redactor
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(redactor)
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(level)
    return redactor


def add_secrets(secrets: Iterable[str]) -> None:
    """Mask these too, from now on (secrets named by the config, once it is read)."""
    if _active is not None:
        _active.update([*_active.secrets, *secrets])


def reset_logging() -> None:
    """Remove the handler `configure_logging` installed, if any."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
        handler.close()


_OURS = "driftbot_handler"
_active: SecretFilter | None = None
