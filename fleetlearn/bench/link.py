"""A site's link to the core that a benchmark can cut: a TCP forwarder on loopback between a
site broker's bridge and the core broker. :meth:`CutLink.cut` closes every connection through
it and turns new ones away (accepted, then closed at once: the bridge sees its link fail and
retries on its ``restart_timeout``); :meth:`CutLink.heal` lets them through again. Threads
only; :meth:`CutLink.close` ends them and every socket. ``tests/integration/test_faults.py``
cuts a gateway's link with it too; ``tests/netsim.py`` has the other test links
(namespaces, ``tbf``, a delay proxy).

>>> import socket
>>> target = socket.create_server(("127.0.0.1", 0))
>>> link = CutLink(("127.0.0.1", 0), target.getsockname())
>>> client = socket.create_connection(("127.0.0.1", link.port))
>>> far, _ = target.accept()
>>> client.sendall(b"up"); far.recv(2)
b'up'
>>> link.cut(); client.recv(2)          # the cut closes what went through it
b''
>>> link.heal(); link.close(); target.close(); far.close(); client.close()
"""

from __future__ import annotations

import contextlib
import socket
import threading


class CutLink:
    """Forward ``listen`` to ``target`` both ways, until cut."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen)
        self.server.settimeout(0.2)
        self.port: int = self.server.getsockname()[1]
        self.cuts = 0
        self._is_cut, self._closed = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                down, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            if self._is_cut.is_set():
                down.close()
                continue
            try:
                up = socket.create_connection(self.target, timeout=5)
            except OSError:
                down.close()
                continue
            for s in (down, up):
                s.settimeout(None)
                # MQTT's small packets go through at once, as on a direct connection
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:  # a cut while it connected: turned away too
                away = self._is_cut.is_set()
                if not away:
                    self._open += [down, up]
            if away:
                down.close()
                up.close()
                continue
            for src, dst in ((down, up), (up, down)):
                t = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                self._threads.append(t)
                t.start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _drop_all(self) -> None:
        with self._lock:
            dropped, self._open = self._open, []
        for s in dropped:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def cut(self) -> None:
        """Close every connection through the link; turn new ones away until :meth:`heal`."""
        with self._lock:
            self._is_cut.set()
        self.cuts += 1
        self._drop_all()

    def heal(self) -> None:
        self._is_cut.clear()

    def close(self) -> None:
        """End every thread and socket this link made."""
        self._closed.set()
        self._drop_all()
        self.server.close()
        for t in self._threads:
            t.join(5)
