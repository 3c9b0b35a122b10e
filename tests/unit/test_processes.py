"""stop_process / stop_processes: SIGTERM, a deadline, then SIGKILL, on real child processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from broker.processes import stop_process, stop_processes
from tests.conftest import process_alive

pytestmark = pytest.mark.timeout(30)

#: Ignores SIGTERM, says so on stdout once it does, then sleeps.
STUBBORN = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
#: Ends on SIGTERM (the default action); ready at once.
COOPERATIVE = "import time; print('ready', flush=True); time.sleep(60)"
#: Catches SIGTERM and exits 3: the code must come back as it is.
TIDY = ("import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(3)); "
        "print('ready', flush=True); time.sleep(60)")


def started(code: str) -> subprocess.Popen:
    """A python child running ``code``, returned once it has printed ``ready``."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"  # blocks until its handlers are in place
    proc.stdout.close()
    return proc


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout():
    proc = started(STUBBORN)
    began = time.monotonic()
    code = stop_process(proc, timeout=0.5)
    assert code == -signal.SIGKILL
    assert time.monotonic() - began >= 0.5  # it had its chance first
    assert not process_alive(proc.pid)


def test_a_child_that_exits_on_sigterm_is_not_killed():
    proc = started(COOPERATIVE)
    assert stop_process(proc, timeout=20.0) == -signal.SIGTERM


def test_the_code_a_child_exits_with_comes_back():
    proc = started(TIDY)
    assert stop_process(proc, timeout=20.0) == 3
    assert stop_process(proc, timeout=20.0) == 3  # already gone: the same code, no signal


def test_many_share_one_deadline_and_only_the_stubborn_is_killed():
    procs = [started(STUBBORN), started(COOPERATIVE), started(STUBBORN), started(TIDY)]
    began = time.monotonic()
    codes = stop_processes(procs, timeout=1.0)
    took = time.monotonic() - began
    assert codes == [-signal.SIGKILL, -signal.SIGTERM, -signal.SIGKILL, 3]
    # One deadline: the second stubborn child is not given a timeout of its own after the first.
    assert took < 1.0 + 1.0
    assert not any(process_alive(p.pid) for p in procs)
