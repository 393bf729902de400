"""The reaper's own API Priority and Fairness level (infra/rbac/eks-reaper-flowcontrol.yaml,
applied at `up`): the apiserver puts the reaper's requests in it, and nobody else's."""

from __future__ import annotations

from pathlib import Path

import yaml

from testbed import flowcontrol

ROOT = Path(__file__).resolve().parents[2]


def test_reaper_requests_are_in_their_own_priority_level(env, api, admin, as_identity):
    want = flowcontrol.uids(admin, api)
    assert flowcontrol.classified(as_identity("reaper"), api) == want


def test_other_identities_are_not_in_the_reaper_level(env, api, admin, as_identity):
    fs_uid, pl_uid = flowcontrol.uids(admin, api)
    for identity in ("norbac", None):
        session = as_identity(identity) if identity else admin
        got = flowcontrol.classified(session, api)
        assert fs_uid not in got and pl_uid not in got, (identity or "admin", got)


def test_the_level_queues_and_stays_small(admin, api):
    r = admin.get(f"{api}/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations/"
                  f"{flowcontrol.NAME}", timeout=10)
    r.raise_for_status()
    limited = r.json()["spec"]["limited"]
    assert limited["limitResponse"]["type"] == "Queue", limited
    assert limited["lendablePercent"] == 0, limited
    # below the workloads' levels: workload-low has 100 shares, global-default 20
    assert limited["nominalConcurrencyShares"] < 20, limited


def test_the_testbed_runs_the_shipped_manifest(admin, api):
    docs = {d["kind"]: d for d in yaml.safe_load_all(
        (ROOT / flowcontrol.FLOWCONTROL_FILE).read_text())}
    base = f"{api}/apis/flowcontrol.apiserver.k8s.io/v1"
    for kind, plural in (("PriorityLevelConfiguration", "prioritylevelconfigurations"),
                         ("FlowSchema", "flowschemas")):
        r = admin.get(f"{base}/{plural}/{flowcontrol.NAME}", timeout=10)
        r.raise_for_status()
        live, shipped = r.json()["spec"], docs[kind]["spec"]
        # the apiserver fills defaults in; every field the manifest sets is as shipped
        for key, value in shipped.items():
            assert live[key] == value if not isinstance(value, dict) else \
                {k: live[key][k] for k in value} == value, (kind, key, live[key])
