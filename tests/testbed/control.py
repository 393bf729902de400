"""Fault injection against the running testbed: restart the apiserver in place.

    from testbed.control import restart_apiserver
    restart_apiserver(env)                      # kill, start again, wait for /readyz
    restart_apiserver(env, down_seconds=5)      # stay down 5 s first
    h = restart_apiserver(env, down_seconds=5, wait=False); ...; h.wait()

Protocol (also used by `scripts/testbed restart-apiserver`): write the down time to
`$TESTBED_CONTROL_DIR/restart-apiserver`; the supervisor picks it up within 0.2 s, kills
kube-apiserver with SIGKILL (a crash: connections reset, watches cut), creates
`control/apiserver-down` while it is down, starts it again with the same flags and port,
waits for /readyz and increments `$TESTBED_DIR/apiserver-restarts`.
"""

from __future__ import annotations

import time
from pathlib import Path


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
