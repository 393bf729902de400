"""Fargate profiles: the selectors that decide which pods EKS runs on Fargate."""

from __future__ import annotations

import fnmatch
from typing import Any

JSON = dict[str, Any]

FARGATE_SCHEDULER = "fargate-scheduler"
PROFILE_LABEL = "eks.amazonaws.com/fargate-profile"


def normalize_profiles(profile: Any) -> list[JSON]:
    """Accepts EKS `FargateProfile` dicts (as DescribeFargateProfile returns them) or
    the short form {"name", "namespaces" | "selectors", "subnets"}; one or a list."""
    profiles = profile if isinstance(profile, (list, tuple)) else [profile]
    out = []
    for p in profiles:
        name = p.get("fargateProfileName") or p["name"]
        selectors = p.get("selectors") or [{"namespace": ns} for ns in p.get("namespaces", [])]
        out.append({"name": name, "subnets": list(p["subnets"]),
                    "selectors": [{"namespace": s["namespace"], "labels": s.get("labels") or {}}
                                  for s in selectors]})
    return out


def match_profile(profiles: list[JSON], namespace: str, labels: dict[str, str]) -> JSON | None:
    """The first profile with a selector matching the pod (namespace glob + label subset)."""
    for p in profiles:
        for s in p["selectors"]:
            if fnmatch.fnmatchcase(namespace, s["namespace"]) and all(
                    labels.get(k) == v for k, v in s["labels"].items()):
                return p
    return None


def profile_named(profiles: list[JSON], name: str | None) -> JSON | None:
    """The profile called `name` (a pod's PROFILE_LABEL), if there is one."""
    return next((p for p in profiles if p["name"] == name), None)
