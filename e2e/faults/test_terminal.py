"""What a person sees on a terminal: the real binary in a real pseudo-terminal (stdin,
stdout and stderr on one PTY of 120 columns, as a shell gives them), so TTY detection,
colour and width are exercised, not `--output json`.

No log lines unless asked (`-v`), no `Debug` dump of the AWS SDK's, every error once on
one line, and a table."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

from . import faultlib as fl

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
LOG_LINE = re.compile(r"\b(TRACE|DEBUG|INFO|WARN|ERROR)\b")


def in_pty(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Runs the binary with a PTY of 120x40 as its terminal; its exit status and what the
    terminal showed, escape sequences removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    p = subprocess.Popen([str(fl.reaper_binary()), *args], stdin=slave, stdout=slave,
                         stderr=slave, env=env, close_fds=True, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    rc = p.wait(timeout=10)
    return rc, ANSI.sub("", out.decode("utf-8", "replace"))


def person(env) -> dict[str, str]:
    """The testbed's AWS settings as a person's shell has them: no RUST_LOG, a terminal."""
    return fl.reaper_env(env, {"RUST_LOG": None, "TERM": "xterm-256color"}, json_logs=False)


def no_noise(shown: str) -> None:
    assert not [l for l in shown.splitlines() if LOG_LINE.search(l)], shown
    assert "{ source:" not in shown and "Extensions" not in shown, "a Debug dump:\n" + shown


def test_no_credentials_is_one_line_saying_how_to_provide_them(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TERM": "xterm-256color",
           "AWS_EC2_METADATA_DISABLED": "true"}
    rc, shown = in_pty(["run", "--cluster", "prod@eu-west-1", "--dry-run"], env)
    assert rc == 1, shown
    no_noise(shown)
    said = [l for l in shown.splitlines() if "no AWS credentials" in l]
    assert len(said) == 1, shown
    assert "AWS_PROFILE" in said[0] and "AWS_ACCESS_KEY_ID" in said[0], said[0]
    assert "CLUSTER" in shown and "FAILED" in shown, shown


def test_an_unknown_cluster_is_named_once(env, namespace):
    rc, shown = in_pty(["run", "--cluster", "no-such-cluster", "--namespaces", namespace],
                       person(env))
    assert rc == 1, shown
    no_noise(shown)
    assert len([l for l in shown.splitlines() if "no-such-cluster" in l and "ClusterNotFound" in l]) == 1, shown


def test_a_healthy_plan_is_a_table_and_nothing_else(env, kube, namespace):
    s = fl.seed(kube, namespace, due_jobs=4, due_pods=1)
    rc, shown = in_pty(["plan", "--cluster", env["TESTBED_CLUSTER"], "--namespaces", namespace],
                       person(env))
    assert rc == 0, shown
    no_noise(shown)
    assert "would be deleted" in shown and "NAMESPACE" in shown, shown
    # What is kept, by reason, and when the next one becomes due (Jobs finished a minute
    # ago, inside their 15 minutes).
    kept = [l for l in shown.splitlines() if l.strip().startswith("kept: ")]
    assert len(kept) == 1 and "withinRetention=" in kept[0] and "optedOut=" in kept[0], shown
    assert re.search(r"the next becomes due in 1[34]m", kept[0]), kept[0]
    fl.assert_nothing_deleted(kube, s)


def test_a_run_shows_its_table_and_its_logs_only_with_v(env, kube, namespace):
    fl.seed(kube, namespace, due_jobs=6, due_pods=1)
    args = ["run", "--cluster", env["TESTBED_CLUSTER"], "--namespaces", namespace]
    rc, shown = in_pty(args, person(env))
    assert rc == 0, shown
    no_noise(shown)
    # The table's row (the progress bars, redrawn in place, share no line with it).
    row = re.search(rf"^\s*{env['TESTBED_CLUSTER']}\s+{env['AWS_REGION']}\s+(\w+)\s+(\d+)\s+(\d+)", shown, re.M)
    assert row and row.group(1) == "ok" and row.group(3) == "6", shown
    assert re.search(r"^ok in \d+ ms", shown, re.M), shown
    # -v: the log lines come back, above the table
    fl.seed(kube, namespace, due_jobs=2, due_pods=0, keep=False)
    rc, shown = in_pty([*args, "-v"], person(env))
    assert rc == 0, shown
    assert [l for l in shown.splitlines() if " INFO " in l and "cluster done" in l], shown
