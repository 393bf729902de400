"""API Priority and Fairness is on: a throttled user gets real 429s with Retry-After."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import requests

from testbed.throttle import throttle_user
from testbed.tokens import token_for

JOBS = "/apis/batch/v1/jobs?limit=500"


def session(env, identity="reaper") -> requests.Session:
    s = requests.Session()
    s.verify = env["TESTBED_CA_FILE"]
    s.headers["Authorization"] = f"Bearer {token_for(env, identity)}"
    return s


def test_user_with_no_seats_is_always_rejected_with_retry_after(env, admin, api):
    with throttle_user(env, env["TESTBED_REAPER_USERNAME"], shares=0) as t:
        r = session(env).get(f"{api}{JOBS}", timeout=10)
        assert r.status_code == 429, r.text
        assert t.matches(r)
        assert 1 <= int(r.headers["Retry-After"]) <= 32
        # Other users are not affected: the admin is exempt, norbac still reaches RBAC.
        assert admin.get(f"{api}{JOBS}", timeout=10).status_code == 200
        assert session(env, "norbac").get(f"{api}{JOBS}", timeout=10).status_code == 403
    # Removing the throttle restores service (APF picks the deletion up within seconds).
    deadline = time.monotonic() + 30
    while session(env).get(f"{api}{JOBS}", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "throttle still in force after deletion"
        time.sleep(0.2)


def test_few_seats_under_concurrent_load_give_some_429s(env, api):
    """Shares=1 (3 seats with default limits): a burst sees 200s and 429s mixed."""
    with throttle_user(env, env["TESTBED_REAPER_USERNAME"], shares=1) as t:
        stop = threading.Event()
        codes: dict[int, int] = {}
        retry_after: list[str] = []
        lock = threading.Lock()

        def hammer():
            s = session(env)
            while not stop.is_set():
                r = s.get(f"{api}{JOBS}", timeout=30)
                with lock:
                    codes[r.status_code] = codes.get(r.status_code, 0) + 1
                    if r.status_code == 429:
                        assert t.matches(r)
                        retry_after.append(r.headers.get("Retry-After", ""))

        with concurrent.futures.ThreadPoolExecutor(48) as pool:
            futs = [pool.submit(hammer) for _ in range(48)]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (codes.get(429, 0) >= 5 and codes.get(200)):
                time.sleep(0.2)
            stop.set()
            for f in futs:
                f.result()
        assert codes.get(429, 0) >= 5, codes
        assert codes.get(200, 0) > 0, codes
        assert set(codes) <= {200, 429}, codes
        assert all(ra.isdigit() and 1 <= int(ra) <= 32 for ra in retry_after), retry_after[:10]
