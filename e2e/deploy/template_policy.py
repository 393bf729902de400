"""template.yaml and infra/cluster-onboarding.yaml as they would deploy, for given parameters.

Reads a template with cfn-lint's decoder (it understands the short-form tags) and resolves
the intrinsics the templates use (Ref, Fn::Sub, Fn::If + Conditions, Fn::Join, Fn::Split,
Fn::Select, Fn::GetAtt, Fn::FindInMap, Fn::ToJsonString, AWS::NoValue) and the Rules
functions (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Contains, Fn::EachMemberEquals). Small on purpose: it
supports what the templates use and fails loudly on anything else (an `Fn::ForEach`
included: the SAM CLI cannot build it), so a template change cannot silently escape the
tests.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ONBOARDING = ROOT / "infra" / "cluster-onboarding.yaml"

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
NO_VALUE = object()


@functools.lru_cache(maxsize=None)
def load_template(path: Path = TEMPLATE) -> dict:
    """The parsed template (cached: callers must not modify it)."""
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
            elif spec["Type"] == "Number":
                # CloudFormation hands parameters to intrinsics and Rules as strings.
                value = str(value)
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

    def _Split(self, arg: list) -> list[str]:
        sep, text = arg
        return str(self.value(text)).split(sep)

    def _Select(self, arg: list) -> Any:
        index, items = arg
        return self.value(items)[int(self.value(index))]

    def _Contains(self, arg: list) -> bool:
        items, item = self.value(arg)
        return item in items

    def _EachMemberEquals(self, arg: list) -> bool:
        items, item = self.value(arg)
        return all(i == item for i in items)

    def _ToJsonString(self, arg: Any) -> str:
        return json.dumps(self.value(arg))

    def _FindInMap(self, arg: list) -> Any:
        m, k1, k2 = self.value(arg)
        return self.t["Mappings"][m][k1][k2]


def resources(template: dict, resolver: Resolver) -> dict[str, dict]:
    """The resources whose Condition holds, properties resolved."""
    out = {}
    for key, res in template["Resources"].items():
        if key.startswith("Fn::ForEach"):
            raise AssertionError(f"{key}: the SAM CLI cannot build templates with Fn::ForEach")
        if "Condition" in res and not resolver.condition(res["Condition"]):
            continue
        out[key] = {**res, "Properties": resolver.value(res.get("Properties", {}))}
    return out


def rule_failures(parameters: dict[str, Any], path: Path = TEMPLATE) -> list[str]:
    """AssertDescriptions of the template's Rules that these parameters violate."""
    template = load_template(path)
    r = Resolver(template, parameters)
    failures = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not r.value(rule["RuleCondition"]):
            continue
        failures += [a["AssertDescription"] for a in rule["Assertions"] if not r.value(a["Assert"])]
    return failures


def function_role_statements(parameters: dict[str, Any], path: Path = TEMPLATE) -> list[dict]:
    """Every statement the deployed function role would hold, intrinsics resolved."""
    template = load_template(path)
    r = Resolver(template, parameters)
    res = resources(template, r)
    role = res["ReaperRole"]["Properties"]
    if role.get("ManagedPolicyArns"):
        raise AssertionError("the function role must not carry managed policies")
    statements: list[dict] = []
    for policy in role.get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    # Policies attached from outside the role would escape the checks below.
    others = [k for k, v in res.items() if v["Type"] in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")]
    if others:
        raise AssertionError(f"policies outside the role's own: {others}")
    return statements


def actions_of(statement: dict) -> list[str]:
    a = statement["Action"]
    return a if isinstance(a, list) else [a]
