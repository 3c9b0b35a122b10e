"""Strategies by name: a registered one (``sync``, ``fedasync``, ``fedbuff``) or any subclass of
:class:`~learners.strategies.Strategy` as ``package.module:ClassName``; the parameters a strategy
takes, with their defaults; and a strategy built from the options that concern it.

>>> resolve_strategy("fedbuff").__name__
'FedBuff'
>>> strategy_parameters(resolve_strategy("sync"))
{'merge_rule': MergeRule(rule='mean', trim=0.2, clip_norm=None), 'round_timeout': 2.0}
>>> build_strategy("fedasync", {"alpha": 0.3, "buffer": 9, "round_timeout": None})
FedAsync(merge_rule=MergeRule(...), round_timeout=2.0, max_staleness=8, alpha=0.3, staleness=...)
>>> resolve_strategy("fedprox")
Traceback (most recent call last):
...
ValueError: unknown strategy 'fedprox': use one of sync, fedasync, fedbuff, or ...
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from learners.strategies import STRATEGIES, Strategy

#: The default of a parameter that has none: the strategy must be given it.
REQUIRED = inspect.Parameter.empty


def resolve_strategy(spec: str) -> type[Strategy]:
    """The strategy class a name or ``package.module:ClassName`` stands for.

    Raises :class:`ValueError` with one line that says what to do instead.
    """
    if ":" not in spec:
        if spec in STRATEGIES:
            return STRATEGIES[spec]
        raise ValueError(f"unknown strategy {spec!r}: use one of {', '.join(STRATEGIES)}, or "
                         "package.module:ClassName")
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"strategy {spec!r}: write it as package.module:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"strategy {spec!r}: cannot import {module_name!r} ({exc}); is its "
                         "directory on PYTHONPATH?") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"strategy {spec!r}: module {module_name!r} has no {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ValueError(f"strategy {spec!r} is not a subclass of "
                         "learners.strategies.Strategy: subclass it")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise ValueError(f"strategy {spec!r} is abstract: define {missing}")
    return cls


def strategy_parameters(cls: type[Strategy]) -> dict[str, Any]:
    """The parameters ``cls`` takes, in order, each with its default (:data:`REQUIRED` if none);
    a dataclass field's default factory is called."""
    factories = {}
    if dataclasses.is_dataclass(cls):
        factories = {f.name: f.default_factory for f in dataclasses.fields(cls)
                     if f.default_factory is not dataclasses.MISSING}
    parameters = {}
    for p in inspect.signature(cls).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        parameters[p.name] = factories[p.name]() if p.name in factories else p.default
    return parameters


def build_strategy(spec: str, options: Mapping[str, Any]) -> Strategy:
    """The strategy ``spec`` names, given those ``options`` it takes; None is its default.

    >>> build_strategy("sync", {"max_staleness": 8, "round_timeout": 5.0}).max_staleness
    0
    """
    cls = resolve_strategy(spec)
    parameters = strategy_parameters(cls)
    given = {k: v for k, v in options.items() if k in parameters and v is not None}
    missing = [k for k, v in parameters.items() if v is REQUIRED and k not in given]
    if missing:
        raise ValueError(f"strategy {spec!r} needs {', '.join(missing)}")
    return cls(**given)
