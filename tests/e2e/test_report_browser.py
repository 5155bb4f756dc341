"""The HTML incident report in a real browser (headless Chromium): it shows the incident and runs nothing.

The incident is the one tests/functional/test_report.py builds by running the responder on moto; its
finding title, description and an approval's reason carry script and event-handler payloads that
would mark the page (``data-pwned``) if they ran.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from clampdown.report import build_report, to_html
from tests.functional.test_report import DENIAL, TITLE, handled  # noqa: F401 - the fixture

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (Debian: apt-get install -y chromium); "
        "tests/functional/test_report.py still checks the HTML is escaped",
    ),
]


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after Chromium loaded the page (and ran whatever it would run)."""
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=2000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_browser_shows_the_incident_and_runs_nothing(handled: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    page = tmp_path / "report.html"
    page.write_text(to_html(build_report(handled["store"], handled["id"])), encoding="utf-8")
    dom = dump_dom(page, tmp_path / "profile")
    assert "<body" in dom, dom[:500]
    assert "data-pwned" not in dom, "a payload from the finding ran"
    assert not re.search(r"<(script|img|iframe|object|embed|a)\b", dom), "a payload became an element"
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title is not None and unescape(title.group(1)) == f"Incident report: {TITLE}"
    heading = re.search(r"<h1>(.*?)</h1>", dom, re.S)
    assert heading is not None and unescape(heading.group(1)) == f"Incident report: {TITLE}"
    assert DENIAL.replace("<", "&lt;").replace(">", "&gt;") in dom
    assert handled["id"] in dom


def test_a_drill_report_renders_in_the_browser(tmp_path: Path) -> None:
    """The reports a rehearsal writes (--report-dir) are the same self-contained pages."""
    from click.testing import CliRunner

    from clampdown.cli import cli

    out = CliRunner().invoke(
        cli,
        ["drill", "public-s3-exposure", "--format", "json", "--report-dir", str(tmp_path), "--report-format", "html"],
    )
    assert out.exit_code == 0, out.output
    [page] = [Path(p) for p in json.loads(out.output)["reports"]]
    dom = dump_dom(page, tmp_path / "profile")
    assert "data-pwned" not in dom and not re.search(r"<(script|img|iframe|object|embed)\b", dom)
    assert page.stem in dom and "s3.lockdown-bucket" in dom
    assert "slack:U0ONCALL (drill-auto-approve)" in unescape(dom)
