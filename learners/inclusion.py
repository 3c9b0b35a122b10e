"""Which of a learner's own updates a model contains: what adopting it must add back.

A learner keeps learning after it sends, and may send again (a later update on the same base
holds the earlier one). The model that comes back holds one of them, or none: in sync rounds
the round on base v closes with the updates in at that moment, and a later update on base v is
refused as ``stale``. The model says which update of each contributor it merged
(``notes["seqs"]``, :meth:`learners.federation.Federation.step`). Assuming, as before, that
it held the *last* one lost every sample between the merged update and the last send: from
the parameters and, worse, from the moments (the first rain a gateway saw vanished from its
scaling, and the next rain met a weight armed under an sd of almost nothing: the weather
replay's run-to-run spread, issue 15 point 8).

The answer is the anchor (parameters) and moments the adopted model already counts of ours:
``None`` moments means none of what we learned since our base.

>>> import numpy as np
>>> from broker.messages import LinearParams, Model, Scaler
>>> p = lambda w: LinearParams(("x",), np.array([w]), 0.0)
>>> sends = {7: (p(1.0), Scaler(200, np.zeros(2), np.ones(2))),
...          8: (p(2.0), Scaler(400, np.zeros(2), np.ones(2)))}
>>> model = Model(3, 0.0, 600, ("gw-0", "gw-1"), "y", p(0.5), Scaler.empty(1),
...               notes={"strategy": "sync", "seqs": {"gw-0": 7, "gw-1": 4}})
>>> anchor, moments = contained(model, "gw-0", 2, sends, p(0.0), sends[8])
>>> anchor.weights.tolist(), moments.count   # the update of seq 7, not the last one
([1.0], 200)
>>> anchor, moments = contained(model, "gw-2", 2, sends, p(0.0), sends[8])
>>> anchor.weights.tolist(), moments        # round closed without us: none of it
([0.0], None)
"""

from __future__ import annotations

from broker.messages import LinearParams, Model, Scaler

#: Updates remembered since the last adoption (a learner sends every ``sync_every`` samples;
#: more than this many before a model comes back and the oldest are forgotten).
MAX_SENDS = 64

Sent = tuple[LinearParams, Scaler]


def contained(model: Model, learner_id: str | None, base_version: int,
              sends: dict[int, Sent], adopted: LinearParams | None,
              last: tuple[LinearParams | None, Scaler | None]
              ) -> tuple[LinearParams | None, Scaler | None]:
    """The params and moments of ours that ``model`` holds, as ``(anchor, moments)``.

    ``sends``: our updates since we adopted ``adopted`` (on ``base_version``), by seq;
    ``last``: the answer when the model does not say (an aggregator from before
    ``notes["seqs"]``, a strategy that may still merge a pending update later, or versions we
    skipped): our last send, as before."""
    seqs = model.notes.get("seqs")
    if learner_id is None or not isinstance(seqs, dict):
        return last
    seq = seqs.get(learner_id)
    if isinstance(seq, int) and seq in sends:
        return sends[seq]
    if (seq is None and model.notes.get("strategy") == "sync"
            and model.version == base_version + 1):
        return adopted, None  # the round on our base closed without us: none of ours in it
    return last
