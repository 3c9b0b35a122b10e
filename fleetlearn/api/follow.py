"""Keep the latest model from a broker, for a program that just wants ``predict_one``.

:func:`follow` starts a :class:`Follower`: one client node (:class:`broker.client.Node`) in a
background thread, subscribed to ``{prefix}/learn/model``. Each model is verified (with a
trust file: signed by an aggregator), decoded and judged as a predictor judges it
(:mod:`learners.model_admission`); one refused is counted by reason, logged and dead-lettered
on ``{prefix}/deadletter/{node}``, and the current model stays. A newer model takes over the
per-device memory (lags, last values) of the one it replaces. The personal parts the gateways
publish (``{prefix}/learn/personal/...``, :mod:`learners.personal_book`: verified and judged as
models are) make ``predict_one(..., site=, device=)`` the personalised prediction where one
serves that device. Leaving the ``with`` block stops the thread and disconnects.

Nothing is connected until :meth:`Follower.start` (``follow`` starts it):

>>> models = Follower("127.0.0.1:18830", prefix="wx")
>>> models.topics.model, models.running
('wx/learn/model', False)
>>> models.predict_one({"temp": 20.0})
Traceback (most recent call last):
...
fleetlearn.api.follow.NoModelYet: no model yet on wx/learn/model: wait() for one
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from broker.address import BrokerAddress
from broker.client import Node
from broker.keyring import Keyring
from broker.messages import Model as Message
from broker.topics import Topics
from broker.wire import encode_json, excerpt
from fleetlearn.api.inputs import DEFAULT_FILL
from fleetlearn.api.model import Model, ModelRefused, open_message
from learners.model_admission import SAME, ModelAdmission, ModelBounds
from learners.personal_book import PersonalBook

log = logging.getLogger(__name__)


class NoModelYet(LookupError):
    """No model has come from the broker yet (see :meth:`Follower.wait`)."""


class Follower:
    """The latest admitted model of a deployment, kept up to date from a background thread."""

    def __init__(self, broker: str | BrokerAddress, prefix: str = Topics.prefix,
                 trust: str | Path | None = None, fill: str = DEFAULT_FILL,
                 node_id: str | None = None, bounds: ModelBounds | None = None) -> None:
        self.address = broker if isinstance(broker, BrokerAddress) else BrokerAddress.parse(
            broker)
        self.topics = Topics(prefix)
        self.node_id = node_id or f"follow-{uuid.uuid4().hex[:8]}"
        self.fill = fill
        self.keys = Keyring(trust_file=Path(trust)) if trust is not None else Keyring()
        self.admission = ModelAdmission(bounds or ModelBounds())
        self.refused: Counter[str] = Counter()
        self.taken = 0  # models adopted
        self.model: Model | None = None
        self._changed = threading.Condition()
        self.personal = PersonalBook(
            lambda: self.model and (self.model.features, self.model.target), self.keys,
            (bounds or ModelBounds()).max_magnitude)
        self.node = Node(self.node_id, self.address, subscriptions=[
            (self.topics.model, 1), *((f, 1) for f in self.topics.personal_filters)],
                         handler=self._handle)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float | None = None) -> Follower:
        """Connect (:class:`broker.address.BrokerUnreachable` / ``BrokerRefused`` if it
        cannot) and follow from a background thread."""
        self.node.connect(timeout)
        self.node.every(1.0, self.keys.refresh)
        self._thread = threading.Thread(target=self.node.run, name=self.node_id, daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread; it disconnects on its way out."""
        self.node.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float = 10.0, newer_than: int = 0) -> Model:
        """The current model once its version is above ``newer_than`` (TimeoutError if none
        comes in ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.model is None or self.model.version <= newer_than:
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    raise TimeoutError(f"no model above v{newer_than} from {self.address} "
                                       f"on {self.topics.model} in {timeout:g} s")
            return self.model

    def predict_one(self, x: dict[str, float], ts: float | datetime | None = None,
                    device: str | None = None, site: str | None = None) -> float:
        """:meth:`Model.predict_one` with the current model (:class:`NoModelYet` before one)."""
        model = self.model
        if model is None:
            raise NoModelYet(f"no model yet on {self.topics.model}: wait() for one")
        return model.predict_one(x, ts=ts, device=device, site=site)

    def _handle(self, topic: str, payload: bytes) -> None:
        if topic != self.topics.model:  # a personal part
            refused = self.personal.offer(topic, payload)
            if refused is not None:
                self._refuse(payload, *refused, topic=topic)
            return
        try:
            message = open_message(payload, self.keys)
        except ModelRefused as exc:
            self._refuse(payload, exc.reason, str(exc))
            return
        refused = self.admission.judge(message, signed=self.keys is not None)
        if refused is SAME:
            return
        if refused is not None:
            self._refuse(payload, *refused)
            return
        model = self._next(message)
        model.personal = self.personal
        self.admission.adopted(message)
        self.taken += 1
        with self._changed:
            self.model = model
            self._changed.notify_all()

    def _next(self, message: Message) -> Model:
        """The model of ``message``: the current one's successor (its per-device history
        kept), or a fresh one when the fleet's task changed (features, target, local time)."""
        current = self.model
        if current is None:
            return Model(message, self.fill)
        try:
            return current.successor(message)
        except ValueError:
            log.warning("%s: v%d is a new task (features, target or local time): followed, "
                        "per-device history restarted", self.node_id, message.version)
            return Model(message, self.fill)

    def _refuse(self, payload: bytes, reason: str, detail: str, topic: str | None = None
                ) -> None:
        log.log(logging.DEBUG if reason in self.refused else logging.WARNING,
                "%s: model refused: %s (%s)", self.node_id, reason, detail)
        self.refused[reason] += 1
        self.node.publish(self.topics.deadletter(self.node_id), encode_json({
            "node": self.node_id, "reason": reason, "detail": detail,
            "topic": topic or self.topics.model, "excerpt": excerpt(payload), "ts": time.time()}))


@contextmanager
def follow(broker: str | BrokerAddress, prefix: str = Topics.prefix,
           trust: str | Path | None = None, fill: str = DEFAULT_FILL,
           timeout: float | None = None, **options) -> Iterator[Follower]:
    """``with follow("127.0.0.1:18830") as models: models.wait().predict_one(...)``: the
    latest verified, admitted model of the deployment under ``prefix``. ``broker``: HOST:PORT,
    ``mqtt[s]://HOST:PORT``, or a :class:`broker.address.BrokerAddress` (TLS files, user
    name and password); ``trust``: a trust file (only models an aggregator signed); ``fill``:
    as :meth:`Model.predict_one`'s."""
    follower = Follower(broker, prefix, trust, fill, **options).start(timeout)
    try:
        yield follower
    finally:
        follower.close()
