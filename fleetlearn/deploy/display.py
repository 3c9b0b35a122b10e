"""Terminal output of `fleetlearn up`: a live table while it runs, a summary at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from fleetlearn.deploy.state import DeploymentState


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


class RateMeter:
    """Readings per second from successive cumulative counts."""

    def __init__(self) -> None:
        self.last: tuple[float, int] | None = None
        self.rate = 0.0

    def update(self, at: float, count: int) -> float:
        if self.last is not None and at > self.last[0]:
            self.rate = (count - self.last[1]) / (at - self.last[0])
        self.last = (at, count)
        return self.rate


def progress_table(state: DeploymentState, elapsed: float, rate: float) -> Table:
    readings = state.readings()
    model = state.last_model
    err = state.models[-1].weight_error if state.models else None
    federated = state.nodes.get("aggregator", {}).get("federated", {})
    table = Table(
        title=(f"{elapsed:5.1f}s  published {readings['published']:,}  "
               f"{rate:,.0f} readings/s  model v{model.version if model else 0}  "
               f"weight error {_fmt(err)}  federated R² {_fmt(federated.get('r2'))}"),
        title_justify="left",
    )
    for col in ("gateway", "partition", "learned", "rejected", "model", "MAE", "R²"):
        table.add_column(col, justify="left" if col in ("gateway", "partition") else "right")
    for name, m in state.of_kind("gateway").items():
        pq = m.get("prequential", {})
        table.add_row(name, m.get("partition", ""), f"{m.get('learned', 0):,}",
                      f"{sum(m.get('rejected', {}).values()):,}", f"v{m.get('model_version', 0)}",
                      _fmt(pq.get("mae")), _fmt(pq.get("r2")))
    return table


class ProgressView:
    """A live table on a terminal; a plain line every few seconds otherwise (CI, logs)."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.meter = RateMeter()
        self.live: Live | None = None
        self.next_line = 0.0

    def __call__(self, state: DeploymentState, elapsed: float) -> None:
        rate = self.meter.update(elapsed, state.readings()["published"])
        if self.quiet:
            return
        if self.console.is_terminal:
            if self.live is None:
                self.live = Live(console=self.console, refresh_per_second=4, transient=True)
                self.live.start()
            self.live.update(progress_table(state, elapsed, rate))
        elif elapsed >= self.next_line:
            r = state.readings()
            v = state.last_model.version if state.last_model else 0
            self.console.print(f"{elapsed:6.1f}s published {r['published']:,} "
                               f"learned {r['learned']:,} {rate:,.0f}/s model v{v}")
            self.next_line = elapsed + 5.0

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def summary_table(report: dict[str, Any]) -> Table:
    r, m = report["readings"], report["model"]
    table = Table(title="fleetlearn up: summary", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("seconds", _fmt(report["seconds"], 1)),
        ("readings published", f"{r['published']:,}"),
        ("readings learned", f"{r['learned']:,}"),
        ("readings rejected", f"{sum(r['rejected'].values()):,}"),
        ("readings unaccounted", f"{r['unaccounted']:,}"),
        ("gaps (numbers never received)", f"{r['gaps']:,}"),
        ("readings/s", f"{report['readings_per_s']:,.0f}"),
        ("model versions seen", str(m["versions_seen"])),
        ("last model version", _fmt(m["last_version"])),
        ("versions strictly increase", "yes" if m["strictly_increasing"] else "NO"),
        ("weight error vs truth", _fmt(m.get("weight_error"), 4)),
        (f"seconds to within {m['within']:.0%}", _fmt(m["seconds_to_within"], 1)),
        ("federated prequential R²", _fmt(report["federated"].get("r2"), 4)),
        ("aggregation strategy", str(report["settings"].get("strategy"))),
        ("rollbacks", str(len(m["rollbacks"]))),
        ("predictions published", f"{report['predictions']:,}"),
    ]
    if report["settings"].get("drift_at") is not None:
        rows.append(("drift reactions", str(len(m["drift_reactions"]))))
        rows.append(("seconds to within 10% of the drifted truth",
                     _fmt(m["seconds_to_recover"], 1)))
    check = report.get("ground_truth_check")
    if check is not None:
        rows.append(("accounting = fault log", "yes" if check["matches"] else
                     f"NO: {check['differences']}"))
    for reason, n in sorted(r["rejected"].items()):
        rows.append((f"  rejected: {reason}", f"{n:,}"))
    for name, pq in report["prequential"].items():
        rows.append((f"{name} prequential MAE / R²",
                     f"{_fmt(pq.get('mae'))} / {_fmt(pq.get('r2'), 4)}"))
    for what, value in rows:
        table.add_row(what, value)
    return table
