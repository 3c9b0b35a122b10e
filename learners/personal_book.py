"""The personal parts a predictor or the API has received: checked, and which serves whom.

Each message from ``{p}/learn/personal/...`` (:mod:`broker.personal_codec`) is verified as a
model is (with a trust file: signed by a gateway's key, and by the gateway it names), decoded
strictly, and judged by the same bounds as a model (:func:`learners.personal.bounded`: the
task's features and target, finite numbers within ``max_magnitude``); an older ``seq`` on the
same topic is refused as replayed, the same one again (a reconnect's retained copy) ignored.
Each refusal has a reason (``personal_*``) for the caller to count and dead-letter.

A device's own part serves it first; else the site part that lists it.

>>> import numpy as np
>>> from broker.messages import LinearParams
>>> from broker.personal_codec import PersonalPart, encode_personal
>>> book = PersonalBook(lambda: (("a",), "y"))
>>> part = PersonalPart("gw-0", "s0", None, ("d1",), 5, 0.0, 10, "y", 1.0,
...                     LinearParams(("a",), np.array([3.0]), 0.0))
>>> book.offer("p/learn/personal/gw-0/s0", encode_personal(part)) is None
True
>>> glob = LinearParams(("a",), np.array([1.0]), 0.0)
>>> book.params(glob, "s0", "d1").weights.tolist(), book.params(glob, "s0", "d2") is glob
([3.0], True)
>>> book.offer("p/learn/personal/gw-0/s0", encode_personal(part))   # the retained one again
>>> old = PersonalPart(**{**part.__dict__, "seq": 4})
>>> book.offer("p/learn/personal/gw-0/s0", encode_personal(old)).reason
'personal_replayed'
"""

from __future__ import annotations

from collections.abc import Callable

from broker.keyring import Keyring, SignatureRefused
from broker.messages import LinearParams
from broker.personal_codec import PersonalPart, decode_personal
from broker.wire import MAX_PAYLOAD_BYTES, DecodeError
from learners.model_admission import Refusal
from learners.personal import bounded, combine

#: The task parts are judged against: (features, target), or None while none is known.
TaskOf = Callable[[], tuple[tuple[str, ...], str] | None]

class PersonalBook:
    def __init__(self, task: TaskOf, keys: Keyring | None = None,
                 max_magnitude: float = 1e9, max_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.task, self.keys = task, keys or Keyring()
        self.max_magnitude, self.max_bytes = max_magnitude, max_bytes
        self.by_topic: dict[str, PersonalPart] = {}
        self._device: dict[tuple[str, str], PersonalPart] = {}  # device parts
        self._site: dict[tuple[str, str], PersonalPart] = {}  # (site, device) -> site part
        self.taken = 0

    def offer(self, topic: str, payload: bytes) -> Refusal | None:
        """Take a part message (None), or say why not."""
        try:
            body, signer = self.keys.check(payload, "personal", "gateway")
            part = decode_personal(body, self.max_bytes)
        except (DecodeError, SignatureRefused) as exc:
            return Refusal(f"personal_{exc.reason}", str(exc))
        if signer is not None and signer.name != part.gateway:
            return Refusal("personal_wrong_signer", f"{signer.name} signed {part.gateway}'s part")
        task = self.task()
        if task is not None:
            if part.target != task[1]:
                return Refusal("personal_task", f"target {part.target!r}, the task's {task[1]!r}")
            refused = bounded(part.params, task[0], self.max_magnitude)
            if refused is not None:
                return Refusal(*refused)
        known = self.by_topic.get(topic)
        if known is not None and part.seq <= known.seq:
            return None if part.seq == known.seq else Refusal(  # the same: nothing to do
                "personal_replayed", f"seq {part.seq} after {known.seq}")
        self.by_topic[topic] = part
        if part.device is not None:
            self._device[(part.site, part.device)] = part
        else:
            for device in part.devices:
                self._site[(part.site, device)] = part
        self.taken += 1
        return None

    def part(self, site: str, device: str) -> PersonalPart | None:
        """The part that serves ``device`` on ``site``, if any."""
        return self._device.get((site, device)) or self._site.get((site, device))

    def params(self, global_params: LinearParams, site: str | None, device: str | None
               ) -> LinearParams:
        """The personalised parameters for a reading of ``device`` on ``site`` (the global
        ones without a part, or with one for other features)."""
        part = self.part(site, device) if site is not None and device is not None else None
        if part is None or part.params.features != global_params.features:
            return global_params
        return combine(global_params, part.params, part.alpha)
