"""The live page of a deployment: `up --dashboard PORT` and `fleetlearn dashboard`.

:mod:`~fleetlearn.dashboard.snapshot` turns what the monitor knows into the page's JSON (pure),
:mod:`~fleetlearn.dashboard.rates` measures rates, :mod:`~fleetlearn.dashboard.server` serves the
page and its server-sent events from a thread, :mod:`~fleetlearn.dashboard.live` ties them to a
monitor; the page itself is ``static/`` (plain HTML and JavaScript, no build step).
"""
