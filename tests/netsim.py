"""Real links for multi-site tests: a network namespace per site joined to the host by veth
pairs (one the site-core link, whose bandwidth ``tc tbf`` limits and whose carrier a partition
takes down; one a management link the test reaches the site's broker by), and a TCP delay
proxy that adds latency, jitter and stalls on the bridge's path (this kernel has no netem).

Needs root and ``ip``/``tc`` (iproute2); :func:`netns_unavailable` says why not, for a skip.
Addresses are private (``10.231.X.0/30`` for the site-core link, ``10.231.X.4/30`` for the
management link, X free on this host). Every namespace, link and thread made here is removed
by :meth:`SiteNamespace.remove` / :meth:`DelayProxy.close`, which the fixtures call in their
finalizers, also when the test fails.

>>> s = DelaySchedule(latency=0.05, jitter=0.0, stall_every=10.0, stall=2.0)
>>> round(s.due(0.0), 3), round(s.due(0.001), 3)  # 50 ms after it came, in order
(0.05, 0.051)
>>> s.due(10.5)                       # inside the stall from 10 s to 12 s: after it
12.05
>>> s.due(11.0) >= 12.05              # never before what came earlier
True
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field


def netns_unavailable() -> str | None:
    """Why namespace tests cannot run here (not root, no iproute2), or None."""
    if os.geteuid() != 0:
        return "needs root: network namespaces and veth links (ip netns add) are root's"
    for tool in ("ip", "tc"):
        if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}")):
            return f"needs {tool} (apt-get install iproute2)"
    return None


def run(*args: str, ns: str | None = None) -> None:
    """One ``ip``/``tc`` command (inside namespace ``ns``); raises with its stderr."""
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")


def claim(x: int) -> socket.socket | None:
    """Hold subnet X for this process (an abstract unix socket named after it: bound by one
    process at a time, let go when closed or when the process ends), or None if another
    holds it. Parallel test workers never pick the same X, nor remove each other's links.

    >>> held = claim(256)  # no subnet's X (0-255): no test's namespace holds it
    >>> held is not None and claim(256) is None
    True
    >>> held.close(); again = claim(256); again is not None
    True
    >>> again.close()
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(f"\0fleetlearn-netsim-{x}")
    except OSError:
        sock.close()
        return None
    return sock


def free_subnet() -> tuple[int, socket.socket]:
    """An X, held (:func:`claim`), such that no address of this host is in 10.231.X.0/24 and
    no link is named after it; and what holds it."""
    used = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    free = [x for x in range(256) if f"10.231.{x}." not in used and f"flw{x}a" not in links]
    random.shuffle(free)
    for x in free:
        held = claim(x)
        if held is not None:
            return x, held
    raise RuntimeError("no free 10.231.X.0/24 on this host")


@dataclass
class SiteNamespace:
    """A site's network namespace and its two veth links to the host."""

    #: tbf on both ends of the site-core link: bits/s (None: no limit).
    rate: str | None = "2mbit"
    x: int = field(init=False)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.x, self._held = free_subnet()
        self.name = f"fl-{uuid.uuid4().hex[:8]}"
        self.wan, self.mgmt = f"flw{self.x}", f"flm{self.x}"
        self.core_side = f"10.231.{self.x}.1"   # the host's end of the site-core link
        self.site_wan = f"10.231.{self.x}.2"
        self.site_mgmt = f"10.231.{self.x}.6"   # where the test reaches the site broker

    def create(self) -> SiteNamespace:
        """Make the namespace and links; on any failure remove what was made, then raise."""
        try:
            run("ip", "netns", "add", self.name)
            run("ip", "-n", self.name, "link", "set", "lo", "up")
            for link, host_ip, site_ip in ((self.wan, self.core_side, self.site_wan),
                                           (self.mgmt, f"10.231.{self.x}.5", self.site_mgmt)):
                run("ip", "link", "add", f"{link}a", "type", "veth", "peer", "name",
                    f"{link}b", "netns", self.name)
                run("ip", "addr", "add", f"{host_ip}/30", "dev", f"{link}a")
                run("ip", "-n", self.name, "addr", "add", f"{site_ip}/30", "dev", f"{link}b")
                run("ip", "link", "set", f"{link}a", "up")
                run("ip", "-n", self.name, "link", "set", f"{link}b", "up")
            if self.rate:
                for ns, dev in ((None, f"{self.wan}a"), (self.name, f"{self.wan}b")):
                    run("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", self.rate,
                        "burst", "32kbit", "latency", "400ms", ns=ns)
        except BaseException:
            self.remove()
            raise
        return self

    def partition(self) -> None:
        """Cut the site-core link (its carrier goes down on both ends)."""
        run("ip", "link", "set", f"{self.wan}a", "down")

    def heal(self) -> None:
        run("ip", "link", "set", f"{self.wan}a", "up")

    def remove(self) -> None:
        """Delete the links and the namespace (each step whatever the others did)."""
        for link in (f"{self.wan}a", f"{self.mgmt}a"):
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)

    def release(self) -> None:
        """Let X go to another namespace (after :meth:`remove`, and after :meth:`exists` was
        asked: until then no one else names a link after X)."""
        self._held.close()

    def exists(self) -> bool:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        return self.name in listed or f"{self.wan}a" in links or f"{self.mgmt}a" in links


@dataclass
class DelaySchedule:
    """When a chunk that came at ``t`` goes on: ``latency`` ± ``jitter`` (uniform) later,
    never before the chunk before it, and not during a stall (``stall`` seconds every
    ``stall_every``; 0: none)."""

    latency: float = 0.05
    jitter: float = 0.02
    stall_every: float = 0.0
    stall: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng, self._last = random.Random(self.seed), 0.0

    def due(self, t: float) -> float:
        when = t + max(0.0, self.latency + self._rng.uniform(-self.jitter, self.jitter))
        if self.stall_every > 0:
            start = (when // self.stall_every) * self.stall_every
            if start > 0 and when < start + self.stall:
                when = start + self.stall + self.latency
        self._last = max(self._last, when)
        return self._last


class DelayProxy:
    """A TCP proxy from ``listen`` to ``target`` that delays what passes each way as its
    :class:`DelaySchedule` says. Threads only; :meth:`close` ends them and every socket."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int],
                 **schedule: float) -> None:
        self.target, self.schedule = target, schedule
        self.server = socket.create_server(listen)
        self.port = self.server.getsockname()[1]
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = [self.server]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._start = time.monotonic()
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                down, _ = self.server.accept()
                up = socket.create_connection(self.target, timeout=5)
                up.settimeout(None)  # a quiet link is no reason to drop it
            except OSError:
                continue
            self._sockets += [down, up]
            for src, dst in ((down, up), (up, down)):
                t = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                self._threads.append(t)
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        """Read as it comes, stamping each chunk's due time; a writer sends it when due."""
        schedule, owed = DelaySchedule(**self.schedule), queue.Queue()
        writer = threading.Thread(target=self._write, args=(owed, dst), daemon=True)
        self._threads.append(writer)
        writer.start()
        try:
            while not self._closed.is_set():
                chunk = src.recv(65536)
                if not chunk:
                    break
                owed.put((self._start + schedule.due(time.monotonic() - self._start), chunk))
        except OSError:
            pass
        owed.put((0.0, b""))  # the end: the writer shuts both down once it is sent

    def _write(self, owed: queue.Queue, dst: socket.socket) -> None:
        try:
            while True:
                due, chunk = owed.get()
                if not chunk:
                    break
                wait = due - time.monotonic()
                if wait > 0 and self._closed.wait(wait):
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self._threads:
            t.join(5)
