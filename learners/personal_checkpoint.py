"""Personal parts as a checkpoint and back: what a restarted gateway resumes from.

A gateway's personal parts (:class:`~learners.personal.PersonalParts`) are learned from its
sites' readings alone and never leave it whole (only the blended part is published), so a
restart would begin them from scratch: on an hourly stream, weeks of a site's readings before
its own models serve it again. :func:`parts_state` turns every key's own model, slow twin and
mixing state (and, with ``lr = "auto"``, the parts' own step search) into plain lists;
:func:`restore_parts` puts them back, after checking they are this task's and well formed
(a ``ValueError`` says what is wrong, and nothing is changed).

>>> import numpy as np
>>> from learners.linear import LinearModel
>>> make = lambda: LinearModel(("a",))
>>> parts = PersonalParts(make)
>>> X = np.arange(40.0).reshape(-1, 1); y = 3.0 * X[:, 0]
>>> _ = parts.learn(["s0"] * 40, X, y, np.zeros(40))
>>> state = parts_state(parts)
>>> again = PersonalParts(make)
>>> restore_parts(again, state)
1
>>> bool(np.array_equal(again.learn(["s0"] * 5, X[:5], y[:5], np.zeros(5)),
...                     parts.learn(["s0"] * 5, X[:5], y[:5], np.zeros(5))))
True
>>> restore_parts(PersonalParts(lambda: LinearModel(("b",))), state)
Traceback (most recent call last):
...
ValueError: personal parts of features ['a'], this task's ['b']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from learners.personal import Key, PersonalParts

#: The layout of :func:`parts_state`; another is refused.
FORMAT = 1


def _arrays(model) -> dict[str, list[float]]:
    return {name: array.tolist() for name, array in zip(model.state._fields, model.state,
                                                         strict=True)}


def _checked(model, arrays: dict[str, list[float]]) -> list[np.ndarray]:
    """``arrays`` as ``model``'s state holds them, each checked for its length and finite
    numbers (``ValueError``); nothing is changed."""
    values = []
    for name, mine in zip(model.state._fields, model.state, strict=True):
        value = np.asarray(arrays[name], dtype=float)
        if value.shape != mine.shape or not np.isfinite(value).all():
            raise ValueError(f"{name}: {value.shape[0] if value.ndim else 'no'} numbers "
                             f"(finite?), not {mine.shape[0]}")
        values.append(value)
    return values


def _put(model, values: list[np.ndarray]) -> None:
    for mine, value in zip(model.state, values, strict=True):
        mine[:] = value


def key_to_json(key: Key) -> list[str | None] | str:
    """A key as JSON holds it (a site and device pair as a list)."""
    return key if isinstance(key, str) else list(key)


def key_from_json(value: Any) -> Key:
    """The key :func:`key_to_json` wrote (``ValueError``: not one)."""
    if isinstance(value, str):
        return value
    site, device = value
    if not isinstance(site, str) or not (device is None or isinstance(device, str)):
        raise ValueError(f"a key of a site and a device, not {value!r}")
    return (site, device)


def parts_state(parts: PersonalParts) -> dict[str, Any]:
    """Everything ``parts`` learned, as JSON-able lists (the task's features and kind too)."""
    probe = parts.make()
    search = parts.steps
    return {
        "format": FORMAT, "features": list(probe.features), "kind": probe.kind, "lr": parts.lr,
        "keys": [{"key": key_to_json(key), "own": _arrays(model),
                  "slow": _arrays(parts.slow[key]), "sums": parts.sums[key].tolist()}
                 for key, model in parts.models.items()],
        "search": None if search is None else {
            "steps": list(search.steps), "loss": search.loss.tolist(), "n": search.n,
            "shadows": [_arrays(shadow) for shadow in search.shadows]},
    }


def restore_parts(parts: PersonalParts, state: dict[str, Any]) -> int:
    """Put a :func:`parts_state` into fresh ``parts``; the keys restored. ``ValueError`` (or
    ``KeyError``, ``TypeError`` for a missing or mistyped field) if it is not this task's or
    is malformed; ``parts`` is then as it was."""
    from learners.personal_kernel import STATE

    if state["format"] != FORMAT:
        raise ValueError(f"format {state['format']!r}, not {FORMAT}")
    probe = parts.make()
    if list(state["features"]) != list(probe.features):
        raise ValueError(f"personal parts of features {state['features']}, this task's "
                         f"{list(probe.features)}")
    if state["kind"] != probe.kind:
        raise ValueError(f"personal parts of a {state['kind']} task, this one {probe.kind}")
    fresh = PersonalParts(parts.make, None)
    lr = state["lr"] if parts.steps is not None else parts.lr  # auto: the step it had found
    if lr is not None and not (isinstance(lr, float | int) and lr > 0):
        raise ValueError(f"lr {lr!r}")
    fresh.lr = lr  # the own models' step (their slow twins at half): the one they had
    for entry in state["keys"]:
        key = key_from_json(entry["key"])
        model = fresh._new(key)
        _put(model, _checked(model, entry["own"]))
        _put(fresh.slow[key], _checked(fresh.slow[key], entry["slow"]))
        sums = np.asarray(entry["sums"], dtype=float)
        if sums.shape != (STATE,) or not np.isfinite(sums).all():
            raise ValueError(f"key {key}: a mixing state of {STATE} finite numbers")
        fresh.sums[key] = sums
    search, steps = state.get("search"), parts.steps
    if steps is not None and search is not None and list(search["steps"]) == list(steps.steps):
        shadows = [_checked(shadow, arrays)
                   for shadow, arrays in zip(steps.shadows, search["shadows"], strict=True)]
        loss = np.asarray(search["loss"], dtype=float)
        if loss.shape != (len(shadows),) or not float(search["n"]) >= 0:
            raise ValueError("the step search's losses")
        for shadow, values in zip(steps.shadows, shadows, strict=True):
            _put(shadow, values)
        steps.loss[:] = loss
        steps.n = float(search["n"])
    parts.lr, parts.models, parts.slow, parts.sums = fresh.lr, fresh.models, fresh.slow, fresh.sums
    return len(fresh.models)
