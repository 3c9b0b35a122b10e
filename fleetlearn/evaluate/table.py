"""Every strategy's predictions scored per gateway, as their sample-weighted mean, and pooled
over all readings; as a JSON-able dict and as a rich table.

>>> import numpy as np
>>> y = np.array([1.0, 2.0, 3.0, 4.0]); gw = np.array([0, 1, 0, 1])
>>> t = figures("regression", {"s": y + 1.0}, y, gw, 2, np.ones(4, bool))
>>> t["s"]["gateways"]["gw-0"]["mae"], t["s"]["mean"]["mae"], round(t["s"]["pooled"]["r2"], 6)
(1.0, 1.0, 0.2)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.table import Table

from fleetlearn.evaluate.scores import FIGURES, score
from learners.imbalance import online_thresholds

LABELS = {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "accuracy": "accuracy",
          "balanced_accuracy": "bal. acc.", "log_loss": "log-loss", "roc_auc": "ROC AUC"}


def figures(kind: str, predictions: dict[str, np.ndarray], y: np.ndarray, gateway: np.ndarray,
            gateways: int, scored: np.ndarray, threshold: float | None = 0.5
            ) -> dict[str, dict[str, Any]]:
    """Per strategy: ``gateways`` (each gateway's figures), ``mean`` (weighted by samples)
    and ``pooled`` (over every scored sample at once). Binary: ``threshold`` None tunes each
    gateway's online on its own scored predictions (:func:`learners.imbalance.online_thresholds`),
    as a gateway does."""
    out: dict[str, dict[str, Any]] = {}
    for name, p in predictions.items():
        ok = scored & ~np.isnan(p)
        t = np.full(len(y), 0.5 if threshold is None else threshold)
        if threshold is None and kind == "binary":
            for g in range(gateways):
                mine = ok & (gateway == g)
                t[mine] = online_thresholds(y[mine], p[mine])
        per = {f"gw-{g}": score(kind, y[ok & (gateway == g)], p[ok & (gateway == g)],
                                t[ok & (gateway == g)]) for g in range(gateways)}
        n = sum(s["n"] for s in per.values())
        mean: dict[str, float] = {"n": n}
        for key in FIGURES[kind]:
            mean[key] = (sum(s[key] * s["n"] for s in per.values()) / n) if n else 0.0
        out[name] = {"gateways": per, "mean": mean,
                     "pooled": score(kind, y[ok], p[ok], t[ok])}
    return out


def render(kind: str, table: dict[str, dict[str, Any]], title: str) -> Table:
    """The figures as a rich table: a row per gateway, mean and pooled, per strategy."""
    out = Table(title=title)
    out.add_column("strategy")
    out.add_column("scope")
    out.add_column("n", justify="right")
    for key in FIGURES[kind]:
        out.add_column(LABELS[key], justify="right")
    for name, result in table.items():
        rows = [*result["gateways"].items(), ("mean", result["mean"]),
                ("pooled", result["pooled"])]
        for i, (scope, s) in enumerate(rows):
            out.add_row(name if i == 0 else "", scope, f"{s['n']:,}",
                        *(f"{s[key]:.4f}" for key in FIGURES[kind]),
                        end_section=i == len(rows) - 1)
    return out
