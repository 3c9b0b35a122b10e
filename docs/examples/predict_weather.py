"""Predict the weather example's humidity from its model message, with fleetlearn's API only.

    python docs/examples/predict_weather.py model.json weather.csv [trust.toml] > predictions.csv
"""
import csv
import sys
from datetime import datetime

import fleetlearn

trust = sys.argv[3] if len(sys.argv) > 3 else None  # with one: only a model the aggregator signed
with open(sys.argv[1], "rb") as f:  # a message from {prefix}/learn/model
    model = fleetlearn.Model.from_message(f.read(), trust=trust, fill="last")
print("origin,time_hour,humid,predicted")
with open(sys.argv[2], newline="") as f:
    for row in csv.DictReader(f):
        x = {c: float(row[c]) for c in model.channels if row[c] not in ("", "NA")}
        ts = datetime.fromisoformat(row["time_hour"])  # hour_sin, hour_cos come from it
        y = model.predict_one(x, ts=ts, device=row["origin"])  # a missing channel: last value
        print(f"{row['origin']},{row['time_hour']},{row['humid']},{y:.3f}")
