"""The live page's server on a loopback port: its files, the latest snapshot, the event stream,
a prompt stop that leaves nothing behind, a taken port, a foreign Host (no broker here)."""

import socket
import subprocess
import sys
import threading
from http.client import HTTPConnection, HTTPResponse

import pytest

from fleetlearn.dashboard.server import DashboardServer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server():
    srv = DashboardServer(port=0)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def get(srv: DashboardServer, path: str, host: str | None = None) -> HTTPResponse:
    conn = HTTPConnection(srv.host, srv.port, timeout=10)
    conn.request("GET", path, headers={"Host": host} if host else {})
    return conn.getresponse()


def events(srv: DashboardServer) -> HTTPResponse:
    """An open event stream, as a page holds it."""
    response = get(srv, "/events")
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    return response


def next_data(stream: HTTPResponse) -> tuple[str | None, bytes]:
    """The next event's name (None: a plain message) and data; comments skipped."""
    name = None
    while True:
        line = stream.fp.readline()
        assert line, "the stream ended"
        if line.startswith(b"event: "):
            name = line[7:].strip().decode()
        elif line.startswith(b"data: "):
            data = line[6:].rstrip(b"\n")
            assert stream.fp.readline() == b"\n"
            return name, data


def test_the_page_and_its_script_are_served_from_the_package(server):
    page = get(server, "/")
    body = page.read().decode()
    assert page.status == 200 and page.getheader("Content-Type").startswith("text/html")
    assert '<script src="/dashboard.js"' in body and 'id="model-version"' in body
    assert "http" not in body.replace("http://www.w3.org", "")  # nothing from outside
    script = get(server, "/dashboard.js")
    assert script.status == 200 and b"EventSource" in script.read()
    assert "default-src 'self'" in script.getheader("Content-Security-Policy")
    assert get(server, "/nothing").status == 404


def test_state_json_is_the_latest_snapshot_and_the_stream_pushes_each_new_one(server):
    stream = events(server)
    assert next_data(stream) == (None, b"{}")  # a new page first gets what there is
    server.publish(b'{"model": {"version": 1}}')
    assert next_data(stream) == (None, b'{"model": {"version": 1}}')
    server.publish(b'{"model": {"version": 2}}')
    assert next_data(stream) == (None, b'{"model": {"version": 2}}')
    assert get(server, "/state.json").read() == b'{"model": {"version": 2}}'


def test_stop_sends_the_last_snapshot_and_an_end_then_frees_the_port(server):
    stream = events(server)
    assert next_data(stream)[1] == b"{}"
    server.publish(b'{"ended": "over"}')
    assert next_data(stream)[1] == b'{"ended": "over"}'
    threads = {t.name for t in threading.enumerate()}
    assert "dashboard" in threads
    server.stop()
    assert next_data(stream) == ("end", b"{}")
    assert not server.running and "dashboard" not in {t.name for t in threading.enumerate()}
    with pytest.raises(ConnectionRefusedError):  # nothing listens on the port any more
        socket.create_connection((server.host, server.port), timeout=5).close()
    server.stop()  # twice is harmless


def test_a_taken_port_is_one_clear_error_and_no_thread_left():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        srv = DashboardServer(port=taken.getsockname()[1])
        with pytest.raises(OSError, match=r"cannot serve the dashboard on 127\.0\.0\.1"):
            srv.start()
        assert not srv.running


def test_a_request_for_another_host_is_refused(server):
    assert get(server, "/state.json", host="evil.example:80").status == 421
    assert get(server, "/state.json", host=f"localhost:{server.port}").status == 200


def test_the_cli_does_not_load_the_server_until_a_page_is_served():
    code = ("import sys, fleetlearn.cli, fleetlearn.commands.up, fleetlearn.deploy.up, "
            "fleetlearn.commands.dashboard; print('aiohttp' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
