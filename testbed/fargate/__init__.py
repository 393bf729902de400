"""Fargate stand-in: the parts of EKS + Fargate that AWS runs and this testbed cannot.

There is no scheduler and no kubelet on the testbed. `FargateStandIn.run()` (standin.py)
is both, for every pod, driven by a pod watch (list-then-watch, re-list on 410) and a
small work queue (one worker at a time per pod, level-triggered: each pass looks at the
latest object).

What it does, in the order EKS does it:

1. **Mutation.** EKS injects Fargate pods through a mutating admission webhook
   (`0500-amazon-eks-fargate-mutation.amazonaws.com`). The stand-in serves a real one over
   HTTPS on 127.0.0.1 (its own throw-away CA, passed as `caBundle`) and registers a
   `MutatingWebhookConfiguration` for pod CREATE in the profile namespaces. A pod that
   matches a profile selector (namespace, and labels if the selector has any) and asks for
   the default scheduler gets `schedulerName: fargate-scheduler` and the label
   `eks.amazonaws.com/fargate-profile: <profile>`. The apiserver calls it; nobody else
   sets those fields. `failurePolicy: Fail`, as a missing Fargate webhook on EKS would
   otherwise silently put pods on EC2 nodes.
2. **Scheduling.** An unbound Pending pod with `fargate-scheduler`: one ENI is created in
   moto in the profile subnet with the most free addresses, at the lowest free address
   (moto itself picks random, even duplicate, addresses and never runs out, so the stand-in
   does the IPAM and leaves the pod Pending with a `FailedScheduling` event and a
   `PodScheduled=False` condition when every subnet is full; it retries when an address
   frees up). Then a Node `fargate-ip-10-0-x-y.ec2.internal` labelled
   `eks.amazonaws.com/compute-type=fargate` is created *before* the pod is bound (PodGC
   deletes pods bound to a missing node), then the pod is bound through `pods/binding`.
   Pods with the default scheduler are bound to one shared EC2-like node
   (`ip-10-0-0-10.ec2.internal`), with no ENI.
3. **Kubelet.** Through `pods/status`: Running (podIP = the ENI's address, Ready), then,
   after `testbed.eks-reaper/run-seconds` (default 2; negative = until deleted),
   Succeeded or Failed with a terminated container status carrying
   `testbed.eks-reaper/exit-code` (default 0; reason Completed / Error). A bound pod that
   gets a deletionTimestamp while running is killed (exit 143, Failed) and deleted with
   grace 0, as the kubelet confirms a graceful delete. `testbed.eks-reaper/kubelet: none`
   makes the stand-in leave a pod's status to whoever created it (bulk fixtures).
4. **Teardown.** When a pod object is gone (DELETED event, or missing after a re-list),
   its Fargate node and ENI are deleted and the address is free again in moto's
   `AvailableIpAddressCount`.

State survives a restart: each ENI's description carries the pod uid, each Fargate node a
`testbed.eks-reaper/pod-uid` label; on start the stand-in rebuilds its map from moto and
the nodes, then deletes nodes and ENIs whose pod no longer exists.

One log line per action goes to stdout (or the `log` callable).

Layout (one concept per module):
    profiles.py   Fargate profiles: normalising them, matching a pod to one
    webhook.py    1. the mutating admission webhook: served, registered, removed
    scheduler.py  2. binding pods to a Fargate node (or the EC2 node); Unschedulable
    nodes.py      2./4. per-pod Fargate node + ENI in moto (IPAM), the shared EC2 node
    kubelet.py    3. pod status: Running, then Succeeded/Failed; killing on delete
    workqueue.py  the keyed work queue the workers take pods from
    standin.py    FargateStandIn: the pod watch and the per-pod reconcile tying them up
"""
