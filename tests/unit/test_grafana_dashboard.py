"""docs/grafana-dashboard.json speaks of metrics the exporter defines: every PromQL expression
names at least one sample the exposition can hold, and none it cannot."""

import json
import re
from pathlib import Path

import pytest

from fleetlearn.metrics.catalogue import METRICS, sample_names

pytestmark = pytest.mark.timeout(30)

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
NAME = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b")
#: PromQL's own words in the dashboard's expressions (functions, keywords, its variable).
PROMQL = {"sum", "rate", "histogram_quantile"}


def expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def metric_names(expr: str) -> set[str]:
    """The names an expression selects: identifiers outside quotes, label matchers, ranges,
    grouping clauses and PromQL's words."""
    bare = re.sub(r'"[^"]*"', "", expr)
    for clause in (r"\{[^}]*\}", r"\[[^\]]*\]", r"\b(by|without)\s*\([^)]*\)"):
        bare = re.sub(clause, "", bare)
    return {n for n in NAME.findall(bare) if n not in PROMQL and not n.startswith("__")}


def test_the_dashboard_has_panels_with_expressions():
    assert len(expressions()) >= 10


@pytest.mark.parametrize("expr", expressions())
def test_every_expression_names_metrics_the_exporter_defines(expr):
    names = metric_names(expr)
    assert names, f"no metric in {expr!r}"
    unknown = names - sample_names()
    assert not unknown, f"{expr!r} names {sorted(unknown)}, which the exporter does not define"


def test_the_checker_sees_a_wrong_name():
    assert metric_names('sum by (gateway) (rate(fleetlearn_readings_totl{outcome="x"}[1m]))') \
        - sample_names() == {"fleetlearn_readings_totl"}


def test_the_issues_metrics_are_on_the_dashboard():
    used = {n for expr in expressions() for n in metric_names(expr)}
    for family in ("fleetlearn_readings", "fleetlearn_model_version", "fleetlearn_prequential_r2",
                   "fleetlearn_sync_latency_seconds", "fleetlearn_prediction_latency_seconds",
                   "fleetlearn_resident_memory_bytes", "fleetlearn_predictions"):
        suffixes = {"counter": "_total", "histogram": "_bucket", "gauge": ""}
        assert family + suffixes[METRICS[family].type] in used, family
