"""What each plot of the HTML report shows, taken from a `up --report` dict: pure data, no
plotting library (:mod:`fleetlearn.deploy.html_report` draws it).

Times are seconds into the watch of the deployment (the clock of ``model.history`` and of the
report's ``series``). A plot with nothing to show is left out: a replay has no truth, so no
weight-error plot.

>>> report = {"model": {"history": [[1, 0.5, 0.4], [2, 1.0, 0.1]], "rollbacks": [],
...                     "drift_reactions": [{"version": 2, "policy": "rescale"}]},
...           "truth": None, "readings": {"rejected": {"schema": 3}},
...           "series": {"gateways": {"gw-0": [[0.5, {"n": 5, "mae": 1.0, "r2": 0.1}]]},
...                      "federated": [], "published": [[0.0, 0], [1.0, 100], [2.0, 300]]}}
>>> [(p.name, p.points) for p in report_plots(report)]
[('error', 1), ('quality', 1), ('version', 2), ('rejections', 1), ('throughput', 2)]
>>> report_plots(report)[0].marks
[(1.0, 'drift reaction v2')]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PlotData:
    name: str
    title: str
    ylabel: str
    lines: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    bars: dict[str, float] = field(default_factory=dict)  # a bar chart instead of lines
    step: bool = False
    marks: list[tuple[float, str]] = field(default_factory=list)  # (at, what) on the time axis

    @property
    def points(self) -> int:
        """How many data points it draws."""
        return len(self.bars) + sum(len(xs) for xs, _ in self.lines.values())


def is_binary(report: dict[str, Any]) -> bool:
    """Whether the task is binary (prequential accuracy and log-loss, not MAE and R²).

    >>> is_binary({"prequential": {"gw-0": {"n": 4, "accuracy": 0.5, "log_loss": 0.7}}})
    True
    >>> is_binary({"prequential": {}, "federated": {"mae": 1.0}})
    False
    """
    metrics = [*report.get("prequential", {}).values(), report.get("federated") or {}]
    return any("accuracy" in m for m in metrics)


def marks(report: dict[str, Any]) -> list[tuple[float, str]]:
    """Drift reactions and rollbacks, at the time the model that made them was seen."""
    m = report["model"]
    at = {version: t for version, t, _ in m.get("history", [])}
    out = [(at[r["version"]], f"drift reaction v{r['version']}")
           for r in m.get("drift_reactions", []) if r.get("version") in at]
    out += [(at[r["version"]], f"rollback v{r['version']}")
            for r in m.get("rollbacks", []) if r.get("version") in at]
    drifted = (report.get("series") or {}).get("truth_drifted_at")
    if drifted is not None:
        out.append((drifted, "truth drifted"))
    return sorted(out)


def _finite(value: Any) -> bool:
    """A number matplotlib can place.

    >>> _finite(0.5), _finite(None), _finite(float("inf")), _finite(True)
    (True, False, False, False)
    """
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _metric_lines(series: dict[str, Any], key: str) -> dict[str, tuple[list, list]]:
    sources = {**series.get("gateways", {}), "federated": series.get("federated", [])}
    lines = {}
    for name, points in sources.items():
        kept = [(at, m[key]) for at, m in points if _finite(m.get(key))]
        xs, ys = [at for at, _ in kept], [v for _, v in kept]
        if xs:
            lines[name] = (xs, ys)
    return lines


def throughput(published: list[list[float]]) -> tuple[list[float], list[float]]:
    """Readings per second between successive counts of readings published.

    >>> throughput([[0.0, 0], [1.0, 100], [1.0, 100], [3.0, 500]])
    ([1.0, 3.0], [100.0, 200.0])
    """
    xs, ys = [], []
    for (t0, c0), (t1, c1) in itertools.pairwise(published):
        if t1 > t0:
            xs.append(t1)
            ys.append((c1 - c0) / (t1 - t0))
    return xs, ys


def report_plots(report: dict[str, Any]) -> list[PlotData]:
    """The plots this report has data for, in the order the page shows them."""
    series = report.get("series") or {}
    binary, ms = is_binary(report), marks(report)
    error_key, quality_key = ("log_loss", "accuracy") if binary else ("mae", "r2")
    error_name, quality_name = ("log-loss", "accuracy") if binary else ("MAE", "R²")
    history = report["model"].get("history", [])
    plots = [
        PlotData("error", f"prequential {error_name}, per gateway and federated", error_name,
                 _metric_lines(series, error_key), marks=ms),
        PlotData("quality", f"prequential {quality_name}, per gateway and federated",
                 quality_name, _metric_lines(series, quality_key), marks=ms),
        PlotData("version", "model version", "version",
                 {"model": ([h[1] for h in history], [h[0] for h in history])},
                 step=True, marks=ms),
    ]
    if report.get("truth") is not None:
        errs = [h for h in history if _finite(h[2])]
        plots.append(PlotData("weight_error", "weight error against the truth",
                              "relative error", {"model": ([h[1] for h in errs],
                                                           [h[2] for h in errs])}, marks=ms))
    plots.append(PlotData("rejections", "readings rejected, by reason", "readings",
                          bars=dict(sorted(report["readings"].get("rejected", {}).items()))))
    rates = {what: throughput(series.get(what, [])) for what in ("published", "learned")}
    plots.append(PlotData("throughput", "throughput (readings per second)", "readings/s",
                          {what: xy for what, xy in rates.items() if xy[0]}, marks=ms))
    return [p for p in plots if p.points]
