"""The gateway's rules as the judge takes them: a :class:`~gateway.judge_kernel.JudgePolicy`
built once from the feature spec and the cleaning config, in one place from the policy names.

>>> from gateway.cleaning import CleaningConfig
>>> from gateway.features import FeatureSpec
>>> plan = judge_plan(FeatureSpec(("a", "lag1_a", "site_s1"), "y"), CleaningConfig())
>>> plan.channels, plan.sites, plan.lag_features
(('a', 'y'), {'s1': 0}, ['lag1_a'])
>>> plan.policy.impute.tolist(), plan.policy.feature_kind.tolist()  # the target: never imputed
([0, 2], [0, 1, 4])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.cleaning import IMPUTE, OUTLIERS, ChannelPolicy, CleaningConfig, target_policy
from gateway.features import CYCLIC, DEVICE, LAG, SITE, FeatureSpec
from gateway.judge_kernel import (
    FEATURE_CHANNEL,
    FEATURE_COS,
    FEATURE_DEVICE,
    FEATURE_LAG,
    FEATURE_SIN,
    FEATURE_SITE,
    JudgePolicy,
)


@dataclass(frozen=True)
class JudgePlan:
    """The policy the kernel takes, and what it was built from."""

    channels: tuple[str, ...]  # the features' channels, the target last
    policies: list[ChannelPolicy]  # per channel
    sites: dict[str, int]  # site name -> the index a site feature names
    lag_features: list[str]
    policy: JudgePolicy
    devices: dict[str, int]  # device name -> the index a device feature names


def channel_policies(spec: FeatureSpec, config: CleaningConfig) -> list[ChannelPolicy]:
    """Each channel's policy, the target last: its own if the config names one, else the
    default (for the target, :func:`~gateway.cleaning.target_policy` of the default)."""
    default = config.policy
    policies = {**{c: default for c in spec.channels}, spec.target: target_policy(default),
                **{c: p for c, p in config.channel_policies.items() if c in spec.channels}}
    return [policies[c] for c in spec.channels]


def judge_plan(spec: FeatureSpec, config: CleaningConfig) -> JudgePlan:
    """The policy arrays and the feature plan of a gateway."""
    channels = spec.channels
    p = channel_policies(spec, config)
    kinds, index, period = [], [], []
    sites: dict[str, int] = {}
    devices: dict[str, int] = {}
    for f in spec.features:
        if f in CYCLIC:
            kinds.append(FEATURE_SIN if f.endswith("_sin") else FEATURE_COS)
            index.append(0)
            period.append(CYCLIC[f][0])
            continue
        if f.startswith(SITE):
            kinds.append(FEATURE_SITE)
            index.append(sites.setdefault(f[len(SITE):], len(sites)))
        elif f.startswith(DEVICE):
            kinds.append(FEATURE_DEVICE)
            index.append(devices.setdefault(f[len(DEVICE):], len(devices)))
        elif f.startswith(LAG):
            kinds.append(FEATURE_LAG)
            index.append(channels.index(f[len(LAG):]))
        else:
            kinds.append(FEATURE_CHANNEL)
            index.append(channels.index(f))
        period.append(1.0)
    policy = JudgePolicy(
        window=int(config.reorder_window), max_jump=int(config.max_seq_jump),
        max_age=float(config.max_age),
        max_skew=float(config.max_skew),
        impute=np.array([IMPUTE.index(q.impute) for q in p], np.int64),
        impute_age=np.array([q.max_age for q in p], float),
        outliers=np.array([OUTLIERS.index(q.outliers) for q in p], np.int64),
        z=np.array([q.z for q in p], float),
        hist_window=np.array([q.window for q in p], np.int64),
        min_history=np.array([q.min_history for q in p], np.int64),
        smooth=np.array([np.nan if q.smooth is None else q.smooth for q in p], float),
        feature_kind=np.array(kinds, np.int64), feature_index=np.array(index, np.int64),
        feature_period=np.array(period, float), binary=bool(config.binary_target))
    return JudgePlan(tuple(channels), p, sites, [f for f in spec.features if f.startswith(LAG)],
                     policy, devices)
