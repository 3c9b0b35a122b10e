"""`fleetlearn report`: the HTML page of plots from a `up --report` JSON file, again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from fleetlearn.commands.common import UsageProblem

#: Where each option's default lives; this command has none that a config file sets.
OWNERS: dict[str, tuple[type, str]] = {}


def report(
    path: Annotated[Path, typer.Argument(help="A report `fleetlearn up --report` wrote.")],
    html: Annotated[Path | None, typer.Option(help="Write the page here (default: beside the "
                                              "report, .html for .json).")] = None,
) -> None:
    """Draw the HTML report (plots of learning over time) of a `up --report` JSON file."""
    from fleetlearn.deploy.html_report import html_path, write_html

    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise UsageProblem(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or not {"readings", "model"} <= set(data):
        raise UsageProblem(f"{path} is not a report of `fleetlearn up --report`")
    out = html if html is not None else html_path(path)
    points = write_html(data, out)
    typer.echo(f"report written to {out} ({len(points)} plots)")
