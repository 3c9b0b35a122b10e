"""Serves the live page on 127.0.0.1 from a thread of its own (aiohttp), and pushes each new
snapshot to every open page as a server-sent event.

The owner (the monitor's thread) calls :meth:`DashboardServer.publish` with the snapshot's JSON
bytes; the server never reads the deployment's state itself, so nothing is shared between the
threads but those bytes, handed over through the event loop. :meth:`DashboardServer.stop` sends
the last snapshot and an ``end`` event to every open page, closes the streams and the socket,
and joins the thread: nothing is left behind.

Routes: ``/`` (the page), ``/dashboard.js``, ``/dashboard.css``, ``/events`` (the stream) and
``/state.json`` (the latest snapshot). A request whose ``Host`` is not this address (a page of
another site reaching it by DNS rebinding) is refused with 421.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import threading

from aiohttp import web

#: The page's files (in ``static/``) and their content types.
FILES = {"/": ("index.html", "text/html"), "/dashboard.js": ("dashboard.js", "text/javascript"),
         "/dashboard.css": ("dashboard.css", "text/css")}
#: Seconds between comments that keep an idle stream open through proxies.
KEEPALIVE = 15.0
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:"}


def page_file(name: str) -> bytes:
    """One of the page's files, as the package ships it."""
    return importlib.resources.files(__package__).joinpath("static", name).read_bytes()


class DashboardServer:
    """The page's HTTP server: :meth:`start`, :meth:`publish` as often as there is news,
    :meth:`stop` (safe to call twice, and from a ``finally``)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port  # port 0: any free port (the bound one after start)
        self._files = {path: (page_file(name), kind) for path, (name, kind) in FILES.items()}
        self._latest, self._version = b"{}", 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: OSError | None = None
        self._streams: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    # ------------------------------------------------------------ the owner's side

    def start(self, timeout: float = 10.0) -> None:
        """Listen, or raise :class:`OSError` (the port is taken, say)."""
        self._thread = threading.Thread(target=self._main, name="dashboard", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise OSError(f"the dashboard did not start in {timeout:g} s")
        if self._error is not None:
            self._thread.join(timeout)
            raise OSError(f"cannot serve the dashboard on {self.host}:{self.port}: "
                          f"{self._error.strerror or self._error}")

    def publish(self, snapshot: bytes) -> None:
        """The latest snapshot (JSON): every open page gets it now, a new page first."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._take, snapshot)

    def stop(self, timeout: float = 5.0) -> None:
        """End every stream (after the last snapshot), close the socket, join the thread."""
        loop, thread = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._close)
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------ the loop's side

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(loop))
        finally:
            loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        self._closing, self._tick = asyncio.Event(), asyncio.Event()
        app = web.Application(middlewares=[self._only_this_host])
        app.router.add_get("/events", self._events)
        app.router.add_get("/state.json", self._state)
        for path in self._files:
            app.router.add_get(path, self._file)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = runner.addresses[0][1]
        except OSError as exc:
            self._error = exc
        self._loop = loop
        self._ready.set()
        if self._error is None:
            await self._closing.wait()
            if self._streams:  # each sends the last snapshot and ends
                await asyncio.wait(self._streams, timeout=1.0)
        await runner.cleanup()

    def _take(self, snapshot: bytes) -> None:
        self._latest, self._version = snapshot, self._version + 1
        self._wake()

    def _wake(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    def _close(self) -> None:
        self._closing.set()
        self._wake()

    @web.middleware
    async def _only_this_host(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.host not in (f"{self.host}:{self.port}", f"localhost:{self.port}"):
            raise web.HTTPMisdirectedRequest(text="not this host\n")
        return await handler(request)

    async def _file(self, request: web.Request) -> web.Response:
        body, kind = self._files[request.path]
        return web.Response(body=body, content_type=kind, headers=HEADERS)

    async def _state(self, _: web.Request) -> web.Response:
        return web.Response(body=self._latest, content_type="application/json",
                            headers=HEADERS)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        stream = web.StreamResponse(headers={**HEADERS, "Content-Type": "text/event-stream"})
        await stream.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        sent = -1
        try:
            while True:
                tick = self._tick
                if sent != self._version:
                    sent = self._version
                    await stream.write(b"data: " + self._latest + b"\n\n")
                if self._closing.is_set():
                    await stream.write(b"event: end\ndata: {}\n\n")
                    break
                try:
                    await asyncio.wait_for(tick.wait(), KEEPALIVE)
                except TimeoutError:
                    await stream.write(b": keepalive\n\n")
        except ConnectionError:
            pass  # the page went away
        finally:
            self._streams.discard(task)
        return stream
