"""The eks-reaper testbed: real control plane + moto + the pieces AWS runs, on loopback.

Start/stop with `scripts/testbed up|down|status|env|restart-apiserver` (README.md here).
Tests load `$EKS_REAPER_TESTBED/env.json` (default /tmp/eks-reaper-testbed;
pytest_plugin.py gives it as the `env` fixture to every suite). The package is imported
from the repository root (`PYTHONPATH=.`; pytest.ini there does it for pytest).

Layout:
    supervisor.py     the one detached process: ports, PKI, children, moto, env files
    pki.py            CA, apiserver serving cert, admin client cert, SA key
    authenticator.py  EKS token authenticator (TokenReview v1 webhook, SigV4 re-check)
    aws.py            moto server + VPC, subnets, cluster `etl`, Fargate profile
    tokens.py         EKS tokens minted with botocore's presigner (good and broken ones)
    throttle.py       throttle_user(): real APF objects that make a user get 429s
    control.py        restart_apiserver(): kill and restart kube-apiserver in place
    admission.py      the eks-reaper admission policy: probe pod, wait until enforced
    kube.py           admin REST client (list/continue, watch, informer, bulk)
    fargate/          Fargate stand-in: webhook, scheduler, per-pod node + ENI, kubelet
    workload.py       job generator (a workflow engine) and bulk finished fixtures
    cbor_bridge.py    CloudWatch rpc-v2-cbor -> moto bridge
    state.py          where a running testbed keeps its state; env.json for tests
    ports.py          free loopback ports
    pytest_plugin.py  the `env` fixture shared by every suite
    tests/            the testbed's self-tests

Helpers for integration tests:

    from testbed.tokens import token_for
    token = token_for(env, "reaper")          # or "norbac"; when=..., host=... to break it

    from testbed.throttle import throttle_user
    with throttle_user(env, env["TESTBED_REAPER_USERNAME"], shares=1) as t:
        ...                                   # user gets real 429 + Retry-After under load
                                              # shares=0: one request at a time, rest 429

    from testbed.control import restart_apiserver
    restart_apiserver(env, down_seconds=3)    # or wait=False, then .wait_down() / .wait()
"""
