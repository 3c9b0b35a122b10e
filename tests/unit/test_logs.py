"""The nodes' logs: the JSON lines for log shippers, and the root command's log options."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
import typer

from fleetlearn.cli import app
from fleetlearn.commands import logs
from fleetlearn.commands.logs import JsonFormatter

pytestmark = pytest.mark.timeout(30)


def formatted(formatter: logging.Formatter, *records: logging.LogRecord) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    for record in records:
        handler.emit(record)
    return stream.getvalue().splitlines()


def record(msg: str, *args: object, level: int = logging.INFO, **extra: object
           ) -> logging.LogRecord:
    rec = logging.LogRecord("learners.aggregator", level, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_json_lines_are_one_object_each_with_every_field_and_the_extras():
    # Arrange: a line with extras, one with a newline in its message, one without a node
    lines = formatted(JsonFormatter(),
                      record("model v%d broadcast", 4, node="aggregator", version=4),
                      record("two\nlines", level=logging.WARNING, node="gw-0"),
                      record("no node here"))
    # Assert: one line per record, each a JSON object with the fields a shipper needs
    assert len(lines) == 3
    first, second, third = (orjson.loads(line) for line in lines)
    assert set(first) == {"ts", "level", "logger", "node", "message", "version"}
    assert (first["level"], first["logger"], first["node"], first["message"],
            first["version"]) == ("INFO", "learners.aggregator", "aggregator",
                                  "model v4 broadcast", 4)
    assert isinstance(first["ts"], float) and first["ts"] > 1.7e9
    assert second["message"] == "two\nlines" and second["level"] == "WARNING"
    assert third["node"] is None


def test_the_process_node_names_a_line_that_does_not_name_its_own(monkeypatch):
    monkeypatch.setattr(logs, "_process_node", None)
    logs.set_node("gw-7")
    own, other = (orjson.loads(line) for line in formatted(
        JsonFormatter(), record("a"), record("b", node="gw-7-control")))
    assert own["node"] == "gw-7" and other["node"] == "gw-7-control"


def test_an_exception_goes_into_the_object_not_onto_lines_of_its_own():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys
        rec = record("failed")
        rec.exc_info = sys.exc_info()
    lines = formatted(JsonFormatter(), rec)
    assert len(lines) == 1 and "RuntimeError: boom" in orjson.loads(lines[0])["exc"]


@pytest.mark.parametrize(("args", "env", "level", "json"), [
    (["--log-level", "info", "--log-format", "json"], {}, logging.INFO, True),
    ([], {"FLEETLEARN_LOG": "DEBUG", "FLEETLEARN_LOG_FORMAT": "json"}, logging.DEBUG, True),
    ([], {}, logging.WARNING, False),
])
def test_the_root_options_and_their_env_vars_set_up_the_process_log(
        monkeypatch, args, env, level, json):
    for name in ("FLEETLEARN_LOG", "FLEETLEARN_LOG_FORMAT", "FLEETLEARN_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir("/")  # no ./fleetlearn.toml
    root = logging.getLogger()
    before = root.level
    try:
        # --help of a subcommand runs the root callback, then exits
        typer.main.get_command(app).main(args=[*args, "predict", "--help"],
                                         prog_name="fleetlearn", standalone_mode=False)
        handler = logs._handler
        assert root.level == level and handler in root.handlers
        assert isinstance(handler.formatter, JsonFormatter) == json
    finally:
        root.removeHandler(logs._handler)
        root.setLevel(before)


def test_a_bad_level_is_a_usage_error():
    with pytest.raises(typer.BadParameter, match="log level 'LOUD' is not one of"):
        typer.main.get_command(app).main(args=["--log-level", "LOUD", "predict", "--help"],
                                         prog_name="fleetlearn", standalone_mode=False)
