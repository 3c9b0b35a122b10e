"""fleetlearn: federated online learning from IoT streams over MQTT, and its Python API.

``import fleetlearn`` is light: each name loads its module on first use (the learners bring
numba; a program that only predicts never loads it).

>>> import fleetlearn
>>> sorted(fleetlearn.__all__)[:3]
['Classifier', 'Follower', 'MissingInput']
>>> fleetlearn.Model.__module__
'fleetlearn.api.model'
"""

from __future__ import annotations

import importlib
from typing import Any

#: Each public name and the module that defines it.
_HOMES = {
    "Model": "fleetlearn.api.model",
    "ModelRefused": "fleetlearn.api.model",
    "MissingInput": "fleetlearn.api.inputs",
    "follow": "fleetlearn.api.follow",
    "Follower": "fleetlearn.api.follow",
    "NoModelYet": "fleetlearn.api.follow",
    "Regressor": "fleetlearn.api.learner",
    "Classifier": "fleetlearn.api.learner",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'fleetlearn' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
