"""The function role's IAM policy as template.yaml would deploy it, for given parameters.

Reads template.yaml with cfn-lint's decoder (it understands the short-form tags), expands
the `Fn::ForEach` loops over `ClusterNames` and resolves the intrinsics the role's policies
use (Ref, Fn::Sub, Fn::If + Conditions, Fn::Join, Fn::GetAtt, Fn::FindInMap,
Fn::ToJsonString, AWS::NoValue). Small on purpose: it supports what the template uses and fails loudly on
anything else, so a template change cannot silently escape the tests.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
NO_VALUE = object()


def load_template(path: Path = TEMPLATE) -> dict:
    tpl, matches = decode(str(path))
    if matches:
        raise ValueError(f"cannot parse {path}: {matches}")
    return tpl


class Resolver:
    """Evaluates intrinsics with concrete parameter values and pseudo parameters."""

    def __init__(self, template: dict, parameters: dict[str, Any]):
        self.t = template
        self.params: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            value = parameters.get(name, spec.get("Default"))
            if value is None:
                raise ValueError(f"parameter {name} has no default; pass a value")
            if spec["Type"] == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value else [""]
            self.params[name] = value
        self.params.update({
            "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION,
            "AWS::StackName": "eks-reaper", "AWS::NoValue": NO_VALUE,
        })
        self.locals: dict[str, Any] = {}

    def condition(self, name: str) -> bool:
        return bool(self.value(self.t["Conditions"][name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.value(n) for n in node]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            fn = getattr(self, "_" + key.replace("::", "_").replace("Fn_", ""), None)
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                if fn is None:
                    raise NotImplementedError(f"intrinsic {key} is not supported here")
                return fn(arg)
        out = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def _Ref(self, name: str) -> Any:
        if name in self.locals:
            return self.locals[name]
        if name in self.params:
            return self.params[name]
        if name in self.t["Resources"]:
            return f"<{name}>"
        raise KeyError(f"Ref to unknown {name}")

    def _Condition(self, name: str) -> bool:
        return self.condition(name)

    def _GetAtt(self, arg: Any) -> str:
        res, att = arg if isinstance(arg, list) else arg.split(".", 1)
        if res == "ReaperLogGroup" and att == "Arn":
            return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:reaper-logs:*"
        return f"<{res}.{att}>"

    def _Sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))

        def repl(m: re.Match) -> str:
            name = m.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                return self._GetAtt(name)
            return str(self._Ref(name))

        return re.sub(r"\$\{([^!}][^}]*)\}", repl, text)

    def _Join(self, arg: list) -> str:
        sep, items = arg
        return sep.join(str(i) for i in self.value(items))

    def _If(self, arg: list) -> Any:
        name, yes, no = arg
        return self.value(yes if self.condition(name) else no)

    def _Equals(self, arg: list) -> bool:
        a, b = self.value(arg)
        return a == b

    def _Not(self, arg: list) -> bool:
        return not self.value(arg[0])

    def _And(self, arg: list) -> bool:
        return all(self.value(a) for a in arg)

    def _Or(self, arg: list) -> bool:
        return any(self.value(a) for a in arg)

    def _ToJsonString(self, arg: Any) -> str:
        return json.dumps(self.value(arg))

    def _FindInMap(self, arg: list) -> Any:
        m, k1, k2 = self.value(arg)
        return self.t["Mappings"][m][k1][k2]


def expand_foreach(template: dict, resolver: Resolver) -> dict[str, dict]:
    """Resources with every Fn::ForEach loop expanded (logical ids per &{} rules)."""
    out: dict[str, dict] = {}
    for key, body in template["Resources"].items():
        if not key.startswith("Fn::ForEach::"):
            out[key] = body
            continue
        var, collection, resources = body
        for item in resolver.value(collection):
            for id_template, resource in resources.items():
                logical = id_template.replace("&{%s}" % var, re.sub(r"[^A-Za-z0-9]", "", item))
                logical = logical.replace("${%s}" % var, item)
                out[logical] = _substitute_local(copy.deepcopy(resource), var, item)
    return out


def _substitute_local(node: Any, var: str, item: str) -> Any:
    """Replaces Ref var and ${var} in Fn::Sub strings inside a loop body."""
    if isinstance(node, list):
        return [_substitute_local(n, var, item) for n in node]
    if isinstance(node, dict):
        if node == {"Ref": var}:
            return item
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            return {"Fn::Sub": node["Fn::Sub"].replace("${%s}" % var, item)}
        return {k: _substitute_local(v, var, item) for k, v in node.items()}
    return node


def function_role_statements(parameters: dict[str, Any], path: Path = TEMPLATE) -> list[dict]:
    """Every statement the deployed function role would hold, intrinsics resolved."""
    template = load_template(path)
    r = Resolver(template, parameters)
    resources = expand_foreach(template, r)
    statements: list[dict] = []
    role = resources["ReaperRole"]["Properties"]
    if role.get("ManagedPolicyArns"):
        raise AssertionError("the function role must not carry managed policies")
    for policy in role.get("Policies", []):
        statements += r.value(policy["PolicyDocument"])["Statement"]
    for res in resources.values():
        if res.get("Type") == "AWS::IAM::RolePolicy" and res["Properties"]["RoleName"] == {"Ref": "ReaperRole"}:
            if "Condition" in res and not r.condition(res["Condition"]):
                continue
            statements += r.value(res["Properties"]["PolicyDocument"])["Statement"]
    return statements


def actions_of(statement: dict) -> list[str]:
    a = statement["Action"]
    return a if isinstance(a, list) else [a]
