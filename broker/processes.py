"""The one place that stops a child process: SIGTERM, a wait, then SIGKILL; and the parent-death
signal, so a child never outlives the process that started it.

Every caller stops only processes it started itself (a :class:`subprocess.Popen` it holds);
nothing here looks processes up by name.

>>> import subprocess, sys
>>> proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
>>> stop_process(proc, timeout=5.0)  # it ends on SIGTERM: minus the signal's number
-15
>>> stop_process(proc)  # already gone: its code, and no signal sent
-15
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

#: Least wait each process gets once the shared deadline has passed: one that is exiting right
#: now is not killed for the time its siblings took.
MIN_WAIT = 0.1


#: ``prctl`` option: the signal this process gets when its parent (thread) ends (Linux).
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the OS to send ``sig`` to this process when its parent ends (Linux's
    ``PR_SET_PDEATHSIG``); False where there is no such thing. As a ``preexec_fn`` it holds
    from the child's first instruction; the parent's *thread* that started it counts as the
    parent, so start children from a thread that lives as long as the parent process.

    >>> import sys
    >>> die_with_parent(0) == sys.platform.startswith("linux")  # 0 clears it
    True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def orphaned(parent: int) -> bool:
    """True when ``parent`` is no longer this process's parent (it died; we were re-parented).

    >>> orphaned(os.getppid())
    False
    """
    return os.getppid() != parent


def stop_processes(procs: Sequence[subprocess.Popen], timeout: float = 10.0,
                   kill_timeout: float = 5.0) -> list[int]:
    """Stop several processes at once, with one deadline; their return codes, in order.

    SIGTERM goes to every one still running first (so they wind down side by side), then each
    is waited for until ``timeout`` seconds after that (at least :data:`MIN_WAIT` each); one
    still running then is killed (SIGKILL) and waited for up to ``kill_timeout`` seconds
    (:class:`subprocess.TimeoutExpired` if even that fails).
    """
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    codes = []
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), MIN_WAIT))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(kill_timeout)
        codes.append(proc.returncode)
    return codes


def stop_process(proc: subprocess.Popen, timeout: float = 10.0,
                 kill_timeout: float = 5.0) -> int:
    """Stop one process: SIGTERM, wait up to ``timeout`` s, else SIGKILL; its return code."""
    return stop_processes([proc], timeout, kill_timeout)[0]
