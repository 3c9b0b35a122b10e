"""The nodes' logs: set up once per process by the root command, as text or as JSON lines.

``--log-level`` (env ``FLEETLEARN_LOG``) and ``--log-format text|json`` (env
``FLEETLEARN_LOG_FORMAT``) are options of the root command, so every command has them. JSON is
for log shippers: one object per line with ``ts`` (epoch seconds), ``level``, ``logger``,
``node``, ``message`` and any extra fields the line was logged with (``version``, ``reason``,
``path``, ...). ``node`` is the record's own (a service logs with ``extra={"node": ...}``), else
the process's node (:func:`set_node`, called when a command serves its node).

>>> import logging
>>> record = logging.LogRecord("learners.aggregator", logging.INFO, __file__, 1,
...                            "model v%d broadcast", (3,), None)
>>> record.node, record.version = "aggregator", 3
>>> line = JsonFormatter().format(record)
>>> fields = orjson.loads(line)
>>> fields["level"], fields["logger"], fields["node"], fields["message"], fields["version"]
('INFO', 'learners.aggregator', 'aggregator', 'model v3 broadcast', 3)
>>> line.count(chr(10)), type(fields["ts"]).__name__
(0, 'float')
>>> check_level("info"), check_format("JSON")
('INFO', 'json')
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

import orjson

#: Where the root command leaves its choice (click's ``Context.meta``) for `up` to hand on.
LOG_META = "fleetlearn.log"


@dataclass(frozen=True)
class LogChoice:
    """The root command's log options: ``level`` None when none was asked for."""

    level: str | None = None
    format: str = "text"


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

#: Every attribute a plain LogRecord has: anything else on a record is an extra field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}

_process_node: str | None = None
_handler: logging.Handler | None = None


def set_node(node: str) -> None:
    """The node this process runs: the ``node`` of a line that does not name its own."""
    global _process_node
    _process_node = node


def check_level(level: str) -> str:
    """A level name, whatever its case; a ValueError for anything else."""
    name = level.strip().upper()
    if name not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    return name


def check_format(fmt: str) -> str:
    name = fmt.strip().lower()
    if name not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    return name


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, node, message, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6), "level": record.levelname, "logger": record.name,
            "node": getattr(record, "node", None) or _process_node,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str,
                            option=orjson.OPT_SERIALIZE_NUMPY).decode()


def setup_logging(level: str = "WARNING", fmt: str = "text") -> None:
    """Send this process's logs to stderr at ``level``, as ``fmt``. A second call replaces the
    handler of the first (the CLI may run more than once in one process, e.g. in tests) and
    leaves any other handler alone."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(JsonFormatter() if check_format(fmt) == "json"
                          else logging.Formatter(TEXT_FORMAT))
    root.addHandler(_handler)
    root.setLevel(check_level(level))
