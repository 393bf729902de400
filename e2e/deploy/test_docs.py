"""The docs cannot drift from the code. docs/reference.md's configuration table has every
setting the binary reads and only those, each with its default, its SAM parameter and its
CDK prop as the templates wire them (or says why it has none); every metric has its row and
every field the report serialises is named; docs/concepts.md lists every policy reason;
docs/cli.md every subcommand. Every alarm of both templates links, in its AlarmDescription,
to an anchor of docs/runbook.md, and the runbook has a section for no alarm that does not
exist. The README stays short, starts with the demo and the test command, and reaches every
page; every relative link and anchor resolves (offline, no network)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
REFERENCE = (ROOT / "docs" / "reference.md").read_text()
CONCEPTS = (ROOT / "docs" / "concepts.md").read_text()
CLI = (ROOT / "docs" / "cli.md").read_text()
RUNBOOK = ROOT / "docs" / "runbook.md"
TEMPLATE = (ROOT / "template.yaml").read_text()
CDK = (ROOT / "infra" / "lib" / "eks-reaper.ts").read_text()
OPTIONS = (ROOT / "src" / "config" / "options.rs").read_text()
DOCS = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "infra" / "README.md", ROOT / "testbed" / "README.md"]

# Read by the binary but deliberately not deploy parameters; the table's row says why.
# The fan-out's settings: each template sets them with its queue (FanOut / fanOut), from
# its own values, not from a parameter or prop of their own.
SET_BY_FANOUT = {"REAPER_QUEUE_URL", "REAPER_SCHEDULE_INTERVAL", "REAPER_NOT_REPORTED_RUNS"}
NOT_DEPLOYED = {"REAPER_TOKEN_MAX_AGE", "REAPER_MAX_RUN_TIME", *SET_BY_FANOUT}

# CloudWatch's limit on an alarm's description (PutMetricAlarm, AlarmDescription).
ALARM_DESCRIPTION_MAX = 1024


def settings_in_code() -> set[str]:
    return set(re.findall(r'env = "(REAPER_[A-Z_]+)"', OPTIONS))


def defaults_in_code() -> dict[str, str]:
    """Each setting's clap `default_value`, where it has a non-empty one."""
    out = {}
    for attr in re.findall(r"#\[arg\((.*?)\)\]", OPTIONS, re.S):
        env = re.search(r'env = "(REAPER_[A-Z_]+)"', attr)
        default = re.search(r'default_value = "([^"]+)"', attr)
        if env and default:
            out[env.group(1)] = default.group(1)
    return out


def table_rows() -> dict[str, list[str]]:
    """The configuration table's cells by setting: flag, SAM, CDK, default, meaning."""
    rows = {}
    for m in re.finditer(r"^\| `(REAPER_[A-Z_]+)` \| (.*) \|$", REFERENCE, re.M):
        cells = re.split(r"(?<!\\)\| ", m.group(2) + " ")
        rows[m.group(1)] = [c.strip() for c in cells]
    return rows


def sam_parameters_by_setting() -> dict[str, set[str]]:
    """The template's parameters each `REAPER_*` variable of the function is built from."""
    env = {}
    for m in re.finditer(r"^\s+(REAPER_[A-Z_]+): (.*)$", TEMPLATE, re.M):
        refs = set(re.findall(r"!Ref ([\w:]+)", m.group(2))) | set(re.findall(r"\$\{(\w+)\}", m.group(2)))
        conditions = set(re.findall(r"!If \[(\w+),", m.group(2)))
        env[m.group(1)] = {r for r in refs if not r.startswith("AWS::")} - conditions
    return env


def cdk_props_by_setting() -> dict[str, str]:
    """The line of the construct's `reaperEnvironment` that sets each variable."""
    body = CDK[CDK.index("function reaperEnvironment("):]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s+(REAPER_[A-Z_]+): (.*)$", body, re.M)}


def test_every_setting_is_in_the_reference_table_and_only_those():
    assert set(table_rows()) == settings_in_code()


def test_every_default_in_the_code_is_the_tables():
    rows = table_rows()
    wrong = {env: (default, rows[env][3]) for env, default in defaults_in_code().items()
             if f"`{default}`" not in rows[env][3]}
    assert wrong == {}


def test_every_setting_reaches_the_function_from_both_templates_or_says_why_not():
    sam, cdk, code = sam_parameters_by_setting(), cdk_props_by_setting(), settings_in_code()
    assert code - NOT_DEPLOYED <= set(sam), sorted(code - NOT_DEPLOYED - set(sam))
    assert code - NOT_DEPLOYED <= set(cdk), sorted(code - NOT_DEPLOYED - set(cdk))
    rows = table_rows()
    for name in NOT_DEPLOYED - SET_BY_FANOUT:
        assert "Not a SAM parameter" in rows[name][4], rows[name]
    for name in SET_BY_FANOUT:
        assert "FanOut" in rows[name][1] and "fanOut" in rows[name][2], rows[name]
        assert name in TEMPLATE and f"addEnvironment('{name}'" in CDK, name


def test_the_tables_sam_and_cdk_columns_name_what_the_templates_wire():
    """SAM: the cell names the parameters the variable is built from (and only template
    parameters). CDK: each prop named is read on the variable's line of `reaperEnvironment`,
    or by the constant that line passes (`const sink = props.metricsSink ...`)."""
    rows, sam, cdk = table_rows(), sam_parameters_by_setting(), cdk_props_by_setting()
    parameters = set(re.findall(r"^  (\w+):$", TEMPLATE[TEMPLATE.index("\nParameters:"):
                                                          TEMPLATE.index("\nConditions:")], re.M))
    wrong = []
    for env in settings_in_code() - NOT_DEPLOYED:
        named = set(re.findall(r"`(\w+)`", rows[env][1]))
        if not sam[env] <= named <= parameters:
            wrong.append((env, "SAM", named, sam[env]))
        line = cdk[env].rstrip(",")
        for prop in re.findall(r"`([\w.\[\]]+)`", rows[env][2]) or ["(none)"]:
            leaf = prop.split(".")[-1]
            if leaf not in line and f"const {line} = props.{leaf} " not in CDK:
                wrong.append((env, "CDK", prop, line))
    assert wrong == []


def test_sam_defaults_are_the_binarys():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    parameters = yaml.load(TEMPLATE, Loader=Loader)["Parameters"]
    defaults, sam = defaults_in_code(), sam_parameters_by_setting()
    wrong = {}
    for env, default in defaults.items():
        if env in NOT_DEPLOYED or len(sam.get(env, ())) != 1:
            continue
        (param,) = sam[env]
        if str(parameters[param].get("Default")) != default:
            wrong[env] = (param, parameters[param].get("Default"), default)
    assert wrong == {}


def metrics_in_code() -> list[str]:
    source = (ROOT / "src/metrics/list.rs").read_text()
    enum = source[source.index("pub enum Metric {"):]
    return re.findall(r"^\s+([A-Z][A-Za-z]+),$", enum[:enum.index("}")], re.M)


def test_every_metric_has_its_row_and_only_those():
    metrics = metrics_in_code()
    assert len(metrics) >= 20, metrics
    section = REFERENCE[REFERENCE.index("## Metrics"):REFERENCE.index("## The report")]
    rows = [r for r in re.findall(r"^\| ([A-Z][A-Za-z]+) \| ", section, re.M) if r != "Metric"]
    assert sorted(rows) == sorted(metrics)


def serialised_fields(path: Path, structs: list[str]) -> set[str]:
    """camelCase keys of the named structs' fields that serde writes (no `#[serde(skip)]`)."""
    source = path.read_text()
    keys = set()
    for struct in structs:
        body = source[source.index(f"pub struct {struct} {{"):]
        body = body[:body.index("\n}")]
        for m in re.finditer(r"((?:\s*(?:///.*|#\[.*\]))*)\s*pub (\w+):", body):
            if "#[serde(skip)]" in m.group(1):
                continue
            head, *rest = m.group(2).split("_")
            keys.add(head + "".join(w.title() for w in rest))
    return keys


def test_every_field_of_the_report_is_in_the_reference():
    fields = (serialised_fields(ROOT / "src/report.rs", [
        "Report", "DiscoveryReport", "MetricsOutcome", "JobCounts", "PodCounts", "StuckCounts",
        "ClusterReport", "NamespaceAnnotationsReport", "InvalidNamespaceAnnotation",
        "NamespaceEventsReport"])
        | serialised_fields(ROOT / "src/report/concurrency.rs", ["ConcurrencyReport"])
        | serialised_fields(ROOT / "src/headroom/subnets.rs",
                            ["SubnetUsage", "SkippedSubnet", "SubnetRef", "Headroom"])
        | serialised_fields(ROOT / "src/headroom/forecast.rs", ["Forecast"])
        | serialised_fields(ROOT / "src/config/alarm.rs", ["Emergency"])
        | serialised_fields(ROOT / "src/fanout.rs", ["PlanReport"])
        | serialised_fields(ROOT / "src/fanout/reported.rs", ["Reporting"]))
    assert {"fargateHoldingIps", "bytesReceived", "hoursToExhaustion", "decreasesThrottled",
            "enqueued", "notReported"} <= fields
    section = REFERENCE[REFERENCE.index("## The report"):]
    assert sorted(f for f in fields if f"`{f}`" not in section) == []


def test_every_per_object_error_kind_is_in_the_reference():
    kinds = re.findall(r'DeleteFailure::\w+ => "(\w+)"', (ROOT / "src/failure.rs").read_text())
    assert "apiError" in kinds, kinds
    row = re.search(r"^\| `errors` \|.*$", REFERENCE, re.M).group(0)
    assert sorted(k for k in kinds if f"`{k}`" not in row) == []


def test_every_cluster_failure_kind_is_in_the_reference():
    kinds = re.findall(r'ClusterFailure::\w+ => "(\w+)"', (ROOT / "src/failure.rs").read_text())
    assert "UnsupportedVersion" in kinds, kinds
    assert sorted(k for k in kinds if f"`{k}`" not in REFERENCE) == []


def test_every_policy_reason_is_in_the_concepts_table_and_only_those():
    labels = re.findall(r'(?:Keep|Delete)::\w+(?: \{ \.\. \})? => "(\w+)"',
                        (ROOT / "src/policy/reason.rs").read_text())
    assert {"withinRetention", "succeededPastTtl", "stuckTerminating"} <= set(labels)
    section = CONCEPTS[CONCEPTS.index("### Reasons"):]
    rows = re.findall(r"^\| `(\w+)` \| (?:keep|delete) \|", section, re.M)
    assert sorted(rows) == sorted(labels)


def test_every_subcommand_is_documented():
    source = (ROOT / "src/cli/mod.rs").read_text()
    enum = source[source.index("pub enum Command {"):]
    variants = re.findall(r"^    ([A-Z][a-z]+)(?:\(|,)", enum[:enum.index("\n}")], re.M)
    assert "Run" in variants and "Plan" in variants, variants
    assert [v for v in variants if not re.search(rf"eks-reaper {v.lower()}\b", CLI)] == []


# --- alarms and the runbook -------------------------------------------------------------


def sam_alarms() -> dict[str, str]:
    """template.yaml's alarms: name (without the stack) → AlarmDescription, `${...}` kept."""
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node)
                                 if isinstance(node, yaml.ScalarNode) else None)
    resources = yaml.load(TEMPLATE, Loader=Loader)["Resources"]
    out = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            props = resource["Properties"]
            out[props["AlarmName"].removeprefix("${AWS::StackName}-")] = props.get("AlarmDescription", "")
    return out


def cdk_alarms() -> dict[str, str]:
    """The construct's alarms: name → the description as written in the source."""
    out = {}
    for m in re.finditer(r"fleetAlarm\('\w+', '\w+', '([a-z-]+)',\s*([`'\"])((?:\\.|(?!\2)[^\\])*)\2,", CDK, re.S):
        out[m.group(1)] = m.group(3)
    for m in re.finditer(r"alarmName: `\$\{Aws\.STACK_NAME\}-([a-z-]+)`,\s*alarmDescription: ([`'\"])((?:\\.|(?!\2)[^\\])*)\2,",
                         CDK, re.S):
        out[m.group(1)] = m.group(3)
    return out


def test_both_templates_have_the_same_alarms():
    sam, cdk = sam_alarms(), cdk_alarms()
    assert len(sam) >= 17, sorted(sam)
    assert CDK.count("new cloudwatch.Alarm(") + CDK.count("fleetAlarm('") - 1 == len(cdk), sorted(cdk)
    assert sorted(sam) == sorted(cdk)


@pytest.mark.parametrize("template", ["template.yaml", "infra/lib/eks-reaper.ts"])
def test_every_alarm_description_links_to_a_runbook_anchor(template):
    alarms = sam_alarms() if template == "template.yaml" else cdk_alarms()
    anchors_ = anchors(RUNBOOK)
    missing, broken = [], []
    for name, description in alarms.items():
        links = re.findall(r"docs/runbook\.md#([a-z0-9-]+)", description)
        if not links:
            missing.append(name)
        broken += [(name, a) for a in links if a not in anchors_]
    assert (missing, broken) == ([], [])


@pytest.mark.parametrize("template", ["template.yaml", "infra/lib/eks-reaper.ts"])
def test_every_alarm_description_fits_cloudwatchs_limit(template):
    """With each substitution (`${X}`) as long as a parameter value plausibly gets."""
    alarms = sam_alarms() if template == "template.yaml" else cdk_alarms()
    long = {name: len(re.sub(r"\$\{[^}]*\}", "x" * 64, d)) for name, d in alarms.items()}
    assert {n: size for n, size in long.items() if size > ALARM_DESCRIPTION_MAX} == {}


def test_the_runbook_has_a_section_for_each_alarm_and_no_other():
    table = re.findall(r"^\| `<stack>-([a-z-]+)` \| \[[a-z-]+\]\(#([a-z-]+)\) \|$", RUNBOOK.read_text(), re.M)
    assert all(name == anchor for name, anchor in table), table
    assert sorted(name for name, _ in table) == sorted(sam_alarms())
    assert {name for name, _ in table} <= anchors(RUNBOOK)


# --- the README and the links -----------------------------------------------------------


def test_readme_is_at_most_200_lines():
    assert len(README.read_text().splitlines()) <= 200


def test_readme_starts_with_the_demo_then_the_test_command_that_ci_runs():
    block = re.search(r"```sh\n(.*?)```", README.read_text(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands[:2] == ["scripts/demo", "scripts/test"], commands
    assert re.search(r"^exec scripts/test$", (ROOT / ".ci/run").read_text(), re.M)


def links(doc: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    return LINK.findall(text)


def test_every_page_is_reachable_from_the_readme():
    seen, todo = set(), [README.resolve()]
    while todo:
        doc = todo.pop()
        if doc in seen:
            continue
        seen.add(doc)
        for target in links(doc):
            path = target.partition("#")[0]
            if path and not re.match(r"^[a-z]+:", path) and path.endswith(".md"):
                todo.append((doc.parent / path).resolve())
    pages = {p.resolve() for p in [ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")]}
    assert sorted(str(p.relative_to(ROOT)) for p in pages - seen) == []


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings (lower case, punctuation dropped,
    spaces to dashes), plus explicit <a id> / <a name> tags."""
    out = set()
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    for line in text.splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            text = re.sub(r"`", "", m.group(1).strip().lower())
            slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            out.add(slug)
        out.update(re.findall(r'<a (?:id|name)="([^"]+)"', line))
    return out


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(doc: Path):
    broken = []
    for target in links(doc):
        if re.match(r"^[a-z]+:", target):
            continue  # an absolute URL: not checked offline
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert broken == []
