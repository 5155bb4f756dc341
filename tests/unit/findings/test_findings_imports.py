"""The findings package stays off the Lambda cold path's heavy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_importing_findings_pulls_in_no_heavy_dependency() -> None:
    heavy = "('boto3', 'botocore', 'jsonschema', 'pydantic', 'moto', 'yaml')"
    code = f"import sys, chalicelib.findings; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
