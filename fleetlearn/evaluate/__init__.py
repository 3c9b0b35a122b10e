"""`fleetlearn evaluate`: the baselines table offline, without a broker.

A CSV's readings go once through the gateway's own pipeline (:mod:`fleetlearn.evaluate.
samples`); each strategy then predicts, then learns, every cleaned reading in the same order
(:mod:`fleetlearn.evaluate.strategies`), and the predictions are scored per gateway, as a
sample-weighted mean, and pooled over all readings (:mod:`fleetlearn.evaluate.scores`,
:mod:`fleetlearn.evaluate.table`).
"""
