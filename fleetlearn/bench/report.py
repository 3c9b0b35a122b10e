"""How `fleetlearn bench` shows its rows: one table per scenario, as rich tables on the terminal
and as a markdown section ready for docs/benchmarks.md. Pure.

>>> rows = [{"scenario": "ingest", "stream": "QoS 0", "per_s": 31284, "ratio": 0.41},
...         {"scenario": "sync", "stream": "8 learners", "p99_ms": 7.8}]
>>> print(markdown(rows, "fleetlearn bench", "2026-11-26"))
### `fleetlearn bench` (2026-11-26)
<BLANKLINE>
**ingest**
<BLANKLINE>
| stream | per_s | ratio |
|---|---|---|
| QoS 0 | 31,284 | 0.41 |
<BLANKLINE>
**sync**
<BLANKLINE>
| stream | p99_ms |
|---|---|
| 8 learners | 7.8 |
<BLANKLINE>
"""

from __future__ import annotations

from typing import Any


def cell(value: Any) -> str:
    """A figure as a table shows it.

    >>> cell(1234567), cell(0.5), cell(None), cell({"a": 1})
    ('1,234,567', '0.5', '-', "{'a': 1}")
    """
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def by_scenario(rows: list[dict[str, Any]]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per scenario, in order of appearance: its columns (every key its rows have, but the
    scenario) and its rows as cells."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["scenario"], []).append(row)
    out = {}
    for name, group in groups.items():
        keys = [k for k in dict.fromkeys(k for row in group for k in row) if k != "scenario"]
        out[name] = (keys, [[cell(row.get(k)) for k in keys] for row in group])
    return out


def markdown(rows: list[dict[str, Any]], command: str, date: str) -> str:
    """A markdown section: the command and date, then one table per scenario."""
    lines = [f"### `{command}` ({date})", ""]
    for name, (keys, cells) in by_scenario(rows).items():
        lines += [f"**{name}**", "", "| " + " | ".join(keys) + " |",
                  "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in cells]
        lines.append("")
    return "\n".join(lines)
