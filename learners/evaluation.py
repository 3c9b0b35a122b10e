"""Prequential (predict, then learn) evaluation with river's metrics.

>>> ev = Prequential()
>>> ev.update_many([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
>>> {k: round(v, 3) for k, v in ev.as_dict().items()}
{'n': 3, 'mae': 0.333, 'rmse': 0.408, 'r2': 0.75}
>>> {k: round(v, 3) for k, v in ev.take_window().items()}   # since the last take: MAE here
{'recent_loss': 0.333, 'recent_n': 3}
>>> ev.take_window()
{'recent_loss': 0.0, 'recent_n': 0}
>>> clf = Prequential("binary")
>>> clf.update_many([1, 0], [0.9, 0.2])
>>> {k: round(v, 3) for k, v in clf.as_dict().items()}
{'n': 2, 'accuracy': 1.0, 'log_loss': 0.164}
"""

from __future__ import annotations

from collections.abc import Iterable

from river import metrics


class Prequential:
    """MAE, RMSE and R² (regression), or accuracy and log-loss (binary), over every prediction
    made before its sample was learned; and the mean loss (MAE, or log-loss) of a window."""

    def __init__(self, kind: str = "regression") -> None:
        self.kind = kind
        self.n = 0
        if kind == "binary":
            self.metrics = {"accuracy": metrics.Accuracy(), "log_loss": metrics.LogLoss()}
            self.loss = self.metrics["log_loss"]
        else:
            self.metrics = {"mae": metrics.MAE(), "rmse": metrics.RMSE(), "r2": metrics.R2()}
            self.loss = self.metrics["mae"]
        self._window_loss = 0.0  # summed since the last take_window()
        self._window_n = 0

    def update_many(self, ys: Iterable[float], predictions: Iterable[float]) -> None:
        n0, loss0 = self.n, self.loss.get() * self.n
        if self.kind == "binary":
            accuracy, log_loss = self.metrics["accuracy"], self.metrics["log_loss"]
            for y, p in zip(ys, predictions, strict=True):
                self.n += 1
                accuracy.update(bool(y), p >= 0.5)
                log_loss.update(bool(y), p)
        else:
            mae, rmse, r2 = self.metrics["mae"], self.metrics["rmse"], self.metrics["r2"]
            for y, p in zip(ys, predictions, strict=True):
                self.n += 1
                mae.update(y, p)
                rmse.update(y, p)
                r2.update(y, p)
        self._window_loss += self.loss.get() * self.n - loss0
        self._window_n += self.n - n0

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, **{name: m.get() for name, m in self.metrics.items()}}

    def take_window(self) -> dict[str, float]:
        """The mean loss since the previous call, and its sample count; starts a new window."""
        loss, n = self._window_loss, self._window_n
        self._window_loss, self._window_n = 0.0, 0
        return {"recent_loss": loss / n if n else 0.0, "recent_n": n}
