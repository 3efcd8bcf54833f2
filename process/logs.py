"""Process logging: one JSON object per line on stderr, secrets masked.

``agents bot`` and ``agents worker`` call :func:`setup` once. RQ forks each job's work
horse (and its scheduler) from the worker, so they inherit the same handler and log the
same way. Code names the run and step it works on with :func:`bind` (a context
variable: each thread and each forked job sees only its own); a single record can pass
``extra={"run_id": ..., "step": ..., "event": ...}`` instead.

Every record passes through :class:`Redactor` on the handler, so a token that reaches
a message, an argument, a traceback or an extra field is printed as ``***``, then
through :class:`Truncator`, so no message is longer than :data:`MAX_MESSAGE_CHARS`: a
request body or a payload that reaches a message (a library logging what it refused,
say) is never printed whole.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

from process.settings import CommonSettings

#: The fields that say what a record is about, in the order they are printed.
FIELDS = ("run_id", "step", "event")
MASK = "***"
#: The longest message printed; the rest is cut, saying how much.
MAX_MESSAGE_CHARS = 2000

Format = Literal["json", "text"]

_bound: ContextVar[Mapping[str, Any] | None] = ContextVar("agents_log_fields", default=None)


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (``run_id``, ``step``) to every record logged inside the block."""
    token = _bound.set(
        {**(_bound.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    )
    try:
        yield
    finally:
        _bound.reset(token)


def context_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's run, step and event: its own ``extra`` first, then what is bound."""
    bound = _bound.get() or {}
    fields: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is None:
            value = bound.get(name)
        if value is not None:
            fields[name] = value
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "run_id"?, "step"?, "event"?, "exc"?}``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context_fields(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For people at a terminal: the classic line, then ``run_id=… step=… event=…``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in context_fields(record).items())
        return super().formatMessage(record) + (f" [{fields}]" if fields else "")


class Redactor(logging.Filter):
    """Masks every configured secret in a record before any handler formats it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: never crash the caller
            message = f"{record.msg} (log arguments did not fit the format)"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name in FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


class Truncator(logging.Filter):
    """Cuts a message longer than ``limit`` characters, keeping its head."""

    def __init__(self, limit: int = MAX_MESSAGE_CHARS) -> None:
        super().__init__()
        self.limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: never crash the caller
            message = f"{record.msg} (log arguments did not fit the format)"
        if len(message) > self.limit:
            cut = len(message) - self.limit
            record.msg, record.args = f"{message[: self.limit]}… [{cut:,} characters cut]", None
        return True


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def mask_url(url: str) -> str:
    """``redis://:secret@host:6379/0`` -> ``redis://:***@host:6379/0``, for printing."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def secret_values(settings: BaseModel) -> list[str]:
    """Every secret a settings object holds: its ``SecretStr`` fields and the password of
    any URL (``REDIS_URL``)."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, str) and "://" in value:
            password = url_password(value)
            if password:
                found.append(password)
    return [value for value in found if value]


def configure(
    level: str | int,
    fmt: Format = "json",
    *,
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every logger's records, at ``level`` and above, to one handler on stderr.

    Replaces whatever handlers the root logger had, so calling it again reconfigures.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(Redactor(secrets))
    handler.addFilter(Truncator())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler


def setup(settings: CommonSettings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Logging for a bot or worker process, from its settings (``AGENTS_LOG_LEVEL``,
    ``AGENTS_LOG_FORMAT``), masking every secret those settings hold."""
    return configure(
        settings.log_level, settings.log_format, secrets=secret_values(settings), stream=stream
    )
