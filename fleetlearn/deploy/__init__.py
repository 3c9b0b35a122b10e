"""`fleetlearn up`'s deployment: its settings, the node processes, the MQTT monitor and the
state it keeps, the live view and the report (`up.py` runs them in order)."""
