"""The report people look at: one self-contained HTML file of plots (embedded PNG images drawn
with matplotlib) and the key figures of a `up --report` dict.

matplotlib is imported only here, and only when a report is drawn, so `up` stays light.

>>> from fleetlearn.deploy.html_report import html_path
>>> str(html_path(Path("runs/report.json")))
'runs/report.html'
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from pathlib import Path
from typing import Any

from fleetlearn.deploy.plots import PlotData, report_plots

#: Colors of the marks on the time axis.
MARK_COLORS = {"drift": "tab:orange", "rollback": "tab:red", "truth": "tab:purple"}

#: Past this many marks on a plot, they are named in the legend instead of one by one.
MAX_NAMED_MARKS = 6


def html_path(report_path: Path) -> Path:
    """Where the HTML report of a JSON report goes: beside it, ``.html`` for ``.json``."""
    return report_path.with_suffix(".html")


def _mark(ax: Any, marks: list[tuple[float, str]]) -> None:
    """Dashed vertical lines at drift reactions, rollbacks and the truth's drift: each named
    beside its line, or, when there are many, each kind once in the legend with its count."""
    counts = Counter(what.split()[0] for _, what in marks)
    named, seen = len(marks) <= MAX_NAMED_MARKS, set()
    for at, what in marks:
        kind, label = what.split()[0], None
        if not named and kind not in seen:  # each kind once in the legend, with its count
            seen.add(kind)
            label = f"{what.rsplit(' v', 1)[0]} ({counts[kind]})"
        ax.axvline(at, color=MARK_COLORS[kind], linestyle="--", linewidth=1, label=label)
        if named:
            ax.annotate(what, (at, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                        rotation=90, va="top", ha="right")


def _draw(plot: PlotData) -> str:
    """One plot as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), dpi=96, layout="constrained")
    ax = fig.add_subplot()
    if plot.bars:
        ax.barh(list(plot.bars), list(plot.bars.values()), color="tab:blue")
        ax.set_xlabel(plot.ylabel)
    else:
        for label, (xs, ys) in plot.lines.items():
            if plot.step:
                ax.step(xs, ys, where="post", label=label)
            else:  # the federated view stands out from the gateways'
                ax.plot(xs, ys, label=label, marker="." if len(xs) < 30 else None,
                        **({"color": "black", "linewidth": 2.2} if label == "federated" else {}))
        _mark(ax, plot.marks)
        ax.set_xlabel("seconds into the run")
        ax.set_ylabel(plot.ylabel)
        if len(plot.lines) > 1 or len(plot.marks) > MAX_NAMED_MARKS:
            ax.legend(fontsize=7, loc="best")
    ax.set_title(plot.title, fontsize=10)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, value) rows of the key figures."""
    r, m = report["readings"], report["model"]
    rows = [("source", str(report.get("source", "-"))),
            ("seconds", f"{report.get('seconds', 0):.1f}"),
            ("readings published", f"{r['published']:,}"), ("learned", f"{r['learned']:,}"),
            ("rejected", f"{sum(r['rejected'].values()):,}"),
            ("unaccounted", f"{r['unaccounted']:,}"),
            ("model versions seen", str(m.get("versions_seen"))),
            ("last model version", str(m.get("last_version"))),
            ("rollbacks", str(len(m.get("rollbacks", [])))),
            ("drift reactions", str(len(m.get("drift_reactions", []))))]
    if report.get("truth") is not None and m.get("weight_error") is not None:
        rows.append(("weight error vs truth", f"{m['weight_error']:.4f}"))
    for key, value in sorted((report.get("federated") or {}).items()):
        rows.append((f"federated prequential {key}",
                     f"{value:.4g}" if isinstance(value, float) else str(value)))
    return rows


def _baselines(report: dict[str, Any]) -> str:
    """The table of the fleet's model against its baselines (mean and pooled), or ''."""
    found = report.get("baselines")
    if not found:
        return ""
    esc = html.escape
    keys = [k for k in next(iter(found["strategies"].values()))["pooled"] if k != "n"]
    head = "".join(f"<th>{esc(k)} mean</th><th>{esc(k)} pooled</th>" for k in keys)
    body = "".join(
        f"<tr><td title=\"{esc(found['meaning'].get(name, ''))}\">{esc(name)}</td>"
        + "".join(f"<td>{t['mean'][k]:.4f}</td><td>{t['pooled'][k]:.4f}</td>" for k in keys)
        + "</tr>" for name, t in found["strategies"].items())
    return (f'<h2>Against the baselines</h2><p>On the {found["samples"]:,} samples the '
            f'gateways learned.</p><table id="baselines"><tr><th>strategy</th>{head}</tr>'
            f"{body}</table>")


def render_html(report: dict[str, Any], title: str = "fleetlearn report"
                ) -> tuple[str, dict[str, int]]:
    """The page, and how many data points each plot on it has (by plot name)."""
    plots = report_plots(report)
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in _figures(report))
    images = "".join(
        f'<figure id="{p.name}"><img alt="{esc(p.title)}" '
        f'src="data:image/png;base64,{_draw(p)}"></figure>\n' for p in plots)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:1rem auto;color:#222}}
table{{border-collapse:collapse}}td{{padding:.15rem .8rem;border-bottom:1px solid #ddd}}
td:last-child{{text-align:right}}figure{{margin:1rem 0}}img{{max-width:100%}}</style>
</head><body><h1>{esc(title)}</h1>
<p>Times are seconds since <code>fleetlearn up</code> began watching; dashed lines mark drift
reactions (orange) and rollbacks (red).</p>
<table>{rows}</table>
{_baselines(report)}
{images}</body></html>
"""
    return page, {p.name: p.points for p in plots}


def write_html(report: dict[str, Any], path: Path) -> dict[str, int]:
    """Write the page of ``report`` to ``path``; the data points of each plot, by name."""
    page, points = render_html(report, f"fleetlearn report: {path.stem}")
    path.write_text(page, encoding="utf-8")
    return points
