"""Fault injection against the running testbed: restart the apiserver in place, or freeze it.

    from testbed.control import restart_apiserver, freeze_apiserver, freeze_etcd
    restart_apiserver(env)                      # kill, start again, wait for /readyz
    restart_apiserver(env, down_seconds=5)      # stay down 5 s first
    h = restart_apiserver(env, down_seconds=5, wait=False); ...; h.wait()
    with freeze_apiserver(env):                 # SIGSTOP now, SIGCONT on leaving the block
        ...
    with freeze_etcd(env): ...                  # the same for etcd

Protocol (also used by `scripts/testbed restart-apiserver`): write the down time to
`$TESTBED_CONTROL_DIR/restart-apiserver`; the supervisor picks it up within 0.2 s, kills
kube-apiserver with SIGKILL (a crash: connections reset, watches cut), creates
`control/apiserver-down` while it is down, starts it again with the same flags and port,
waits for /readyz and increments `$TESTBED_DIR/apiserver-restarts`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Iterator


def _restarts(state: Path) -> int:
    try:
        return int((state / "apiserver-restarts").read_text().strip() or 0)
    except FileNotFoundError:
        return 0


class Restart:
    """A requested apiserver restart; `wait()` blocks until it is serving again."""

    def __init__(self, state: Path, before: int):
        self.state, self.before = state, before

    def wait(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while _restarts(self.state) <= self.before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"apiserver restart not done in {timeout}s; see "
                                   f"{self.state / 'logs/supervisor.log'}")
            time.sleep(0.1)

    def wait_down(self, timeout: float = 60) -> None:
        """Blocks until the apiserver has been stopped (or already restarted)."""
        deadline = time.monotonic() + timeout
        while not (self.state / "control/apiserver-down").exists():
            if _restarts(self.state) > self.before:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("apiserver did not go down")
            time.sleep(0.05)


def restart_apiserver(env: dict, down_seconds: float = 0, wait: bool = True) -> Restart:
    state = Path(env["TESTBED_DIR"])
    ctl = Path(env["TESTBED_CONTROL_DIR"])
    r = Restart(state, _restarts(state))
    tmp = ctl / "restart-apiserver.tmp"
    tmp.write_text(f"{down_seconds}\n")
    tmp.replace(ctl / "restart-apiserver")
    if wait:
        r.wait()
    return r


# ---- a hung apiserver ------------------------------------------------------------------------

def apiserver_pid(env: dict) -> int:
    """The pid of the testbed's kube-apiserver: the supervisor's child of that name (it
    changes with every restart, so it is looked up each time)."""
    return child_pid(env, "kube-apiserver")


def child_pid(env: dict, name: str) -> int:
    """The pid of the testbed supervisor's child process whose program is `name`."""
    supervisor = int(env["TESTBED_SUPERVISOR_PID"])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        # /proc/PID/stat: "pid (comm) state ppid ..."; comm may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == supervisor and Path(argv0.decode(errors="replace")).name == name:
            return int(entry.name)
    raise RuntimeError(f"no {name} child of the testbed supervisor (pid {supervisor})")


def _state(pid: int) -> str:
    return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0])


def freeze_apiserver(env: dict) -> contextlib.AbstractContextManager[int]:
    """`freeze(env, "kube-apiserver")`."""
    return freeze(env, "kube-apiserver")


def freeze_etcd(env: dict) -> contextlib.AbstractContextManager[int]:
    """`freeze(env, "etcd")`: the apiserver's storage hangs; the apiserver itself answers
    what its watch cache can and times out the rest."""
    return freeze(env, "etcd")


@contextlib.contextmanager
def freeze(env: dict, name: str) -> Iterator[int]:
    """Freezes the supervisor's child `name` (SIGSTOP) for the body of the block, then lets
    it go on (SIGCONT), whatever happens in the block. Yields its pid.

    A frozen apiserver is a hung one, not a down one: the kernel still completes TCP
    handshakes and buffers what clients send, nothing answers, no connection is reset. The
    supervisor does not treat a stopped process as dead. Other clients (the controller
    manager, the Fargate stand-in) wait too, and carry on once it is resumed.
    """
    pid = child_pid(env, name)
    os.kill(pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 5
        while _state(pid) != "T":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} (pid {pid}) did not stop")
            time.sleep(0.005)
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)
