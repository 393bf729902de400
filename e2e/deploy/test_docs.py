"""The docs cannot drift from the code: every setting the binary reads is in the README's
configuration table (and the other way round) and reaches the function through template.yaml
and the CDK construct unless the table says why not; every metric the binary publishes has
its row; every subcommand is documented; and every relative link and anchor in README.md
and docs/*.md points at something that exists (offline, no network)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "infra" / "README.md",
        ROOT / "testbed" / "README.md"]

# Read by the binary but deliberately not deploy parameters; the README row says why.
NOT_DEPLOYED = {"REAPER_TOKEN_MAX_AGE", "REAPER_MAX_RUN_TIME", "REAPER_QUEUE_URL"}


def settings_in_code() -> set[str]:
    return set(re.findall(r'env = "(REAPER_[A-Z_]+)"', (ROOT / "src/config/options.rs").read_text()))


def settings_in_table() -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `(REAPER_[A-Z_]+)`.*$", README, re.M)}


def test_every_setting_is_in_the_readme_table_and_only_those():
    assert set(settings_in_table()) == settings_in_code()


def test_every_setting_reaches_the_function_from_both_templates_or_says_why_not():
    template = set(re.findall(r"^\s+(REAPER_[A-Z_]+):", (ROOT / "template.yaml").read_text(), re.M))
    cdk = set(re.findall(r"(REAPER_[A-Z_]+):", (ROOT / "infra/lib/eks-reaper.ts").read_text()))
    code = settings_in_code()
    assert code - NOT_DEPLOYED <= template, sorted(code - NOT_DEPLOYED - template)
    assert code - NOT_DEPLOYED <= cdk, sorted(code - NOT_DEPLOYED - cdk)
    rows = settings_in_table()
    for name in NOT_DEPLOYED - {"REAPER_QUEUE_URL"}:
        assert "Not a SAM parameter" in rows[name], rows[name]
    assert "FanOut" in rows["REAPER_QUEUE_URL"], rows["REAPER_QUEUE_URL"]


def test_every_metric_has_its_row():
    source = (ROOT / "src/metrics/list.rs").read_text()
    enum = source[source.index("pub enum Metric {"):]
    metrics = re.findall(r"^\s+([A-Z][A-Za-z]+),$", enum[:enum.index("}")], re.M)
    assert len(metrics) >= 20, metrics
    missing = [m for m in metrics if not re.search(rf"^\| {m} \|", README, re.M)]
    assert missing == []


def test_every_subcommand_is_documented():
    source = (ROOT / "src/cli/mod.rs").read_text()
    enum = source[source.index("pub enum Command {"):]
    variants = re.findall(r"^    ([A-Z][a-z]+)(?:\(|,)", enum[:enum.index("\n}")], re.M)
    assert "Run" in variants and "Plan" in variants, variants
    missing = [v for v in variants if f"eks-reaper {v.lower()}" not in README]
    assert missing == []


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings (lower case, punctuation dropped,
    spaces to dashes), plus explicit <a id> / <a name> tags."""
    out = set()
    for line in path.read_text().splitlines():
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
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # an absolute URL: not checked offline
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert broken == []
