"""Fault injection: the apiserver is killed and started again, same port, same identities."""

from __future__ import annotations

import time

import requests

from testbed.control import restart_apiserver


def test_apiserver_restart_in_place(env, admin, api, as_identity):
    before = admin.get(f"{api}/readyz", timeout=10)
    assert before.status_code == 200
    h = restart_apiserver(env, down_seconds=2, wait=False)
    h.wait_down()
    t0 = time.monotonic()
    try:
        admin.get(f"{api}/readyz", timeout=2)
        down_observed = False
    except requests.ConnectionError:
        down_observed = True
    assert down_observed, "apiserver still answering while reported down"
    h.wait()
    assert time.monotonic() - t0 >= 1
    assert admin.get(f"{api}/readyz", timeout=10).status_code == 200
    assert as_identity("reaper").get(f"{api}/apis/batch/v1/jobs", timeout=10).status_code == 200
