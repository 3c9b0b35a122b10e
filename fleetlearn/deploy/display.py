"""Terminal output of `fleetlearn up`: a live table while it runs, a summary at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

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


def _binary(metrics: list[dict[str, Any]]) -> bool:
    """Whether these prequential metrics are a binary task's (accuracy and log-loss)."""
    return any("accuracy" in m for m in metrics)


def headline(state: DeploymentState, elapsed: float, rate: float) -> str:
    """One short line over the live table (no room for it to wrap on an 80-column terminal).

    >>> state = DeploymentState()
    >>> state.on_metrics({"node": "fleet", "kind": "fleet", "published": 1_004_380})
    >>> headline(state, 312.25, 21_000.0)
    '312s  1,004,380 published  21,000/s  v0  fed R² -'
    """
    readings = state.readings()
    model = state.last_model
    err = state.models[-1].weight_error if state.models else None
    federated = state.nodes.get("aggregator", {}).get("federated", {})
    quality = (f"fed accuracy {_fmt(federated.get('accuracy'))}"
               if _binary([federated]) else f"fed R² {_fmt(federated.get('r2'))}")
    return (f"{elapsed:.0f}s  {readings['published']:,} published  {rate:,.0f}/s  "
            f"v{model.version if model else 0}  "
            + ("" if err is None else f"weight err {_fmt(err)}  ") + quality)


def progress_table(state: DeploymentState, elapsed: float, rate: float,
                   title: str | None = None) -> Group:
    """The live view: a one-line headline (``title``, else :func:`headline`), cut with an
    ellipsis rather than wrapped on a narrow terminal, over a table of the gateways."""
    gateways = state.of_kind("gateway")
    binary = _binary([m.get("prequential", {}) for m in gateways.values()])
    metrics = ("accuracy", "log_loss") if binary else ("mae", "r2")
    table = Table()
    for col in ("gateway", "partition", "learned", "rejected", "model",
                *(("accuracy", "log-loss") if binary else ("MAE", "R²"))):
        table.add_column(col, justify="left" if col in ("gateway", "partition") else "right")
    for name, m in gateways.items():
        pq = m.get("prequential", {})
        table.add_row(name, m.get("partition", ""), f"{m.get('learned', 0):,}",
                      f"{sum(m.get('rejected', {}).values()):,}", f"v{m.get('model_version', 0)}",
                      *(_fmt(pq.get(k)) for k in metrics))
    line = Text(title if title is not None else headline(state, elapsed, rate),
                style="bold", no_wrap=True, overflow="ellipsis")
    return Group(line, table)


def drain_line(state: DeploymentState, left: float) -> str:
    """What the drain waits for.

    >>> state = DeploymentState()
    >>> state.on_metrics({"node": "fleet", "kind": "fleet", "published": 1_004_380})
    >>> state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 812_000})
    >>> drain_line(state, 3.25)
    'draining: 812,000 of 1,004,380 taken in (at most 3.2 s more)'
    """
    r = state.readings()
    return (f"draining: {r['taken_in']:,} of {r['published']:,} taken in "
            f"(at most {left:.1f} s more)")


class ProgressView:
    """A live table on a terminal; a plain line every few seconds otherwise (CI, logs)."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.meter = RateMeter()
        self.live: Live | None = None
        self.next_line = 0.0
        self.next_drain_line = float("inf")

    def draining(self, state: DeploymentState, left: float) -> None:
        """The fleet has stopped; the drain waits at most ``left`` seconds more."""
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(progress_table(state, 0.0, 0.0, title=drain_line(state, left)))
        elif not self.console.is_terminal and left <= self.next_drain_line:
            self.console.print(drain_line(state, left))
            self.next_drain_line = left - 1.0

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


#: The style of what is not accounted for, and of what is said but not well.
BAD, WARN = "bold red", "yellow"


def readings_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The readings' split as (what, value, style) rows: published, and where it went."""
    means = ("acknowledged by the broker" if r["published_means"] == "acknowledged"
             else "sent at QoS 0: no acknowledgement")
    return [
        (f"readings published ({means})", f"{r['published']:,}", ""),
        ("  learned", f"{r['learned']:,}", ""),
        ("  rejected", f"{sum(r['rejected'].values()):,}", ""),
        ("  lost (gaps in what was published)", f"{r['lost']:,}", WARN if r["lost"] else ""),
        ("  not taken in before the drain deadline", f"{r['not_taken_in']:,}",
         BAD if r["not_taken_in"] else ""),
        ("readings unaccounted", f"{r['unaccounted']:,}", BAD if r["unaccounted"] else ""),
        ("gaps (numbers never received)", f"{r['gaps']:,}", ""),
        ("not sent: the fleet's send buffer was full", f"{r['send_buffer_full']:,}",
         WARN if r["send_buffer_full"] else ""),
        ("sent, never acknowledged (fate unknown)", f"{r['unacknowledged']:,}",
         WARN if r["unacknowledged"] else ""),
        ("not made: the fleet fell behind its rate", f"{r['behind']:,}",
         WARN if r["behind"] else ""),
    ]


def truth_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The model against the truth; none for a replay (there is no truth to be near).

    >>> from fleetlearn.deploy.state import DeploymentState
    >>> truth_rows({"truth": None, "model": DeploymentState().model_summary()})
    []
    >>> [what for what, _ in truth_rows({"truth": {}, "model": DeploymentState().model_summary()})]
    ['weight error vs truth', 'seconds to within 5%']
    """
    m = report["model"]
    if report.get("truth") is None:
        return []
    return [("weight error vs truth", _fmt(m.get("weight_error"), 4)),
            (f"seconds to within {m['within']:.0%}", _fmt(m["seconds_to_within"], 1))]


def federated_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The federated prequential metrics: R² (regression), accuracy and log-loss (binary;
    balanced accuracy and ROC AUC too where the gateways report them).

    >>> federated_rows({"federated": {"n": 9, "accuracy": 0.875, "log_loss": 0.31}})
    [('federated prequential accuracy', '0.8750'), ('federated prequential log-loss', '0.3100')]
    >>> federated_rows({"federated": {"accuracy": 0.9, "balanced_accuracy": 0.8, "log_loss": 0.3,
    ...                               "roc_auc": 0.95}, "threshold": 0.0474})[1::3]
    [('federated prequential balanced accuracy', '0.8000'), ('decision threshold (fleet)', '0.047')]
    >>> federated_rows({"federated": {}})
    [('federated prequential R²', '-')]
    >>> federated_rows({"federated": {"r2": 0.97}, "lr": {"gw-0": 0.3, "gw-1": 0.3},
    ...                 "personal_lr": {"gw-0": 0.52, "gw-1": 0.3}})[1:]
    [('learning rate (auto)', '0.3'), ('learning rate (auto), personal parts', '0.3, 0.52')]
    """
    fed = report["federated"]
    # lr = "auto": the step each gateway learns with at the end (the fleet's choice), and the
    # one its personal parts chose for themselves
    chosen = [(label, ", ".join(steps)) for label, key in (
        ("learning rate (auto)", "lr"), ("learning rate (auto), personal parts", "personal_lr"))
        if (steps := sorted({f"{v:.3g}" for v in (report.get(key) or {}).values()
                             if v is not None}))]
    if _binary([fed]):
        threshold = report.get("threshold")  # the fleet's, as the last model announced it
        said = [("decision threshold (fleet)", _fmt(threshold, 3))] if threshold else []
        return [(f"federated prequential {label}", _fmt(fed.get(key), 4))
                for key, label in (("accuracy", "accuracy"),
                                   ("balanced_accuracy", "balanced accuracy"),
                                   ("log_loss", "log-loss"), ("roc_auc", "ROC AUC"))
                if key in fed or key in ("accuracy", "log_loss")] + said + chosen
    return [("federated prequential R²", _fmt(fed.get("r2"), 4)), *chosen]


def baseline_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Each strategy on the samples the gateways learned (:mod:`fleetlearn.deploy.baselines`):
    R² as the gateways' weighted mean and pooled over every sample (binary: balanced accuracy).

    >>> table = {"federated": {"mean": {"r2": 0.9}, "pooled": {"r2": 0.95}}}
    >>> baseline_rows({"baselines": {"kind": "regression", "strategies": table}})
    [('R² mean / pooled: federated', '0.9000 / 0.9500')]
    """
    found = report.get("baselines")
    if not found:
        return []
    key, label = (("balanced_accuracy", "balanced accuracy") if found["kind"] == "binary"
                  else ("r2", "R²"))
    return [(f"{label} mean / pooled: {name}",
             f"{_fmt(t['mean'].get(key), 4)} / {_fmt(t['pooled'].get(key), 4)}")
            for name, t in found["strategies"].items()]


def summary_table(report: dict[str, Any]) -> Table:
    """The summary; red, and titled so, when readings are not accounted for.

    >>> from fleetlearn.deploy.state import DeploymentState
    >>> state = DeploymentState()
    >>> state.on_metrics({"node": "fleet", "kind": "fleet", "published": 10})
    >>> report = {"readings": state.readings(), "seconds": 1.0, "readings_per_s": 10.0,
    ...           "model": DeploymentState().model_summary(), "federated": {},
    ...           "settings": {}, "prequential": {}, "predictions": 0}
    >>> summary_table(report).title
    'fleetlearn up: summary: 10 readings NOT accounted for'
    """
    r, m = report["readings"], report["model"]
    title, style = "fleetlearn up: summary", ""
    if r["unaccounted"]:
        title, style = f"{title}: {r['unaccounted']:,} readings NOT accounted for", BAD
    table = Table(title=title, show_header=False, title_justify="left", title_style=style,
                  border_style=style or None)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("seconds", _fmt(report["seconds"], 1))
    for what, value, row_style in readings_rows(r):
        table.add_row(what, value, style=row_style or None)
    rows = [
        ("readings/s", f"{report['readings_per_s']:,.0f}"),
        ("model versions seen", str(m["versions_seen"])),
        ("last model version", _fmt(m["last_version"])),
        ("versions strictly increase", "yes" if m["strictly_increasing"] else "NO"),
        *truth_rows(report),
        *federated_rows(report),
        *baseline_rows(report),
        ("aggregation strategy", str(report["settings"].get("strategy"))),
        ("rollbacks", str(len(m["rollbacks"]))),
        ("predictions published", f"{report['predictions']:,}"),
    ]
    behind = (report.get("predictor") or {}).get("full_turns")
    if behind:  # turns that found more waiting than a turn reads: it fell behind
        rows.append(("predictor behind (turns with more waiting)", f"{behind:,}"))
    if report.get("secure"):
        rows.append(("secured (TLS, a login per node, ACL, signatures)",
                     str(report["secure_files"]["dir"])))
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
    binary = _binary([*report["prequential"].values(), report["federated"]])
    for name, pq in report["prequential"].items():
        rows.append((f"{name} prequential accuracy / balanced / log-loss",
                     f"{_fmt(pq.get('accuracy'), 4)} / {_fmt(pq.get('balanced_accuracy'), 4)}"
                     f" / {_fmt(pq.get('log_loss'), 4)}") if binary else
                    (f"{name} prequential MAE / R²",
                     f"{_fmt(pq.get('mae'))} / {_fmt(pq.get('r2'), 4)}"))
    for what, value in rows:
        table.add_row(what, value)
    return table
