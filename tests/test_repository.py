"""The repository explains itself: every document a file cites exists (and the cited section
in it), no run output is tracked, and the README is a front page."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT = (".py", ".yaml", ".md", ".sh", ".toml", ".txt", ".cfg")
RUN_OUTPUTS = re.compile(r"^(runs|multirun|eval_runs|eval_multirun|outputs|sweeps|lightning_logs|evals)/|\.ckpt$|"
                         r"events\.out\.tfevents")
# `docs/design.md`, `CONTRIBUTING.md`, `archer/data/benchmarks/SOURCES.md` ... optionally followed by `, "Section"`
CITATION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)(?:, \"([^\"]+)\")?")
# documents cited by bare name: the repository's own, and the ones that live outside it
TOP_LEVEL_DOCS = {"README.md", "CONTRIBUTING.md", *(f"{name}.md" for name in ("DESIGN", "PAPER", "STYLE"))}
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [line for line in out.splitlines() if line]


def test_no_run_outputs_are_tracked():
    tracked = [f for f in tracked_files() if RUN_OUTPUTS.search(f)]
    assert tracked == [], f"run outputs under version control: {tracked[:5]}"


def _resolve(cited: str, source: Path) -> Path | None:
    for base in (source.parent, ROOT):
        candidate = (base / cited).resolve()
        if candidate.is_file():
            return candidate
    return None


def test_every_cited_document_and_section_exists():
    dead = []
    for name in tracked_files():
        path = ROOT / name
        if path.suffix not in TEXT or not path.is_file() or name.startswith("archer/data/benchmarks/"):
            continue
        text = path.read_text(errors="replace")
        for match in CITATION.finditer(text):
            cited, section = match.group(1), match.group(2)
            if cited.startswith(("http", "www.")) or "*" in cited:
                continue
            if "/" not in cited and cited not in TOP_LEVEL_DOCS:
                continue  # a bare output name (results.md, summary.md), not a citation
            target = _resolve(cited, path)
            if target is None:
                dead.append(f"{name}: {cited}")
            elif section:
                headings = [line.lstrip("#").strip().lower() for line in target.read_text().splitlines()
                            if line.startswith("#")]
                if not any(section.lower() in heading for heading in headings):
                    dead.append(f"{name}: {cited}, section {section!r}")
        for cited in MARKDOWN_LINK.findall(text):
            if not cited.startswith("http") and _resolve(cited, path) is None:
                dead.append(f"{name}: link {cited}")
    assert dead == [], "dead references:\n" + "\n".join(dead)


def test_readme_is_a_front_page_with_the_quick_start_first():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 8 * 1024, f"README is {len(readme.encode())} bytes"
    sections = [line for line in readme.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Quick start"
    quick = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line for line in quick.splitlines()[1:] if line.strip()]
    assert len(commands) == 2 and "archer-train" in commands[0] and "pytest" in commands[1]
