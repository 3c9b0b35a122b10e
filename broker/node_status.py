"""A node's retained status ``{p}/learn/status/{node}``: ``online`` or ``offline``, and after
``online`` the words that say more of a live node (e.g. ``online behind``: a predictor that
reads whole bursts, i.e. more was waiting than one turn takes).

Every reader decides online/offline by the first word (:func:`is_online`), so a detail never
makes a live node look gone; a detail it does not know it ignores. Pure: no paho.

>>> status(True), status(True, ("behind",)), status(False)
(b'online', b'online behind', b'offline')
>>> is_online(b"online"), is_online(b"online behind"), is_online(b"offline"), is_online(b"")
(True, True, False, False)
>>> details(b"online behind"), details(b"online"), details(b"offline")
(('behind',), (), ())
>>> is_online(b"onlineish")  # the first word, not a prefix
False
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BEHIND", "OFFLINE", "ONLINE", "details", "is_online", "status"]

ONLINE, OFFLINE = b"online", b"offline"
#: The detail of a node that falls behind its input (today: a predictor).
BEHIND = "behind"


def status(online: bool, detail: Iterable[str] = ()) -> bytes:
    """The payload: ``online`` and its details (words), or ``offline`` (no details)."""
    if not online:
        return OFFLINE
    return b" ".join([ONLINE, *(word.encode() for word in detail)])


def is_online(payload: bytes) -> bool:
    """The node is live: the payload's first word is ``online``."""
    return payload.split(b" ", 1)[0] == ONLINE


def details(payload: bytes) -> tuple[str, ...]:
    """What a live node says beyond ``online`` (nothing for an offline one)."""
    if not is_online(payload):
        return ()
    return tuple(payload.decode(errors="replace").split()[1:])
