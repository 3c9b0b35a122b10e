"""Prequential (predict, then learn) evaluation with river's metrics.

>>> ev = Prequential()
>>> for y, y_hat in [(1.0, 1.5), (2.0, 2.0), (3.0, 2.5)]:
...     ev.update(y, y_hat)
>>> {k: round(v, 3) for k, v in ev.as_dict().items()}
{'n': 3, 'mae': 0.333, 'rmse': 0.408, 'r2': 0.75}
"""

from __future__ import annotations

from river import metrics


class Prequential:
    """MAE, RMSE and R² over every prediction made before learning its sample."""

    def __init__(self) -> None:
        self.n = 0
        self.mae = metrics.MAE()
        self.rmse = metrics.RMSE()
        self.r2 = metrics.R2()

    def update(self, y: float, y_hat: float) -> None:
        self.n += 1
        self.mae.update(y, y_hat)
        self.rmse.update(y, y_hat)
        self.r2.update(y, y_hat)

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "mae": self.mae.get(), "rmse": self.rmse.get(), "r2": self.r2.get()}
