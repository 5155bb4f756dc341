"""The playbook bundle: what the deployed function reads is exactly the validated library."""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.wiring import load_bundled_library
from clampdown.deploy.bundle import BUNDLE_RELATIVE_PATH, bundle_bytes, write_bundle
from clampdown.playbooks.loader import load_library
from tests.conftest import CORPUS
from tests.deploy.helpers import SHIPPED, copy_playbooks, shipped_library


def test_the_function_reads_back_the_same_playbooks(tmp_path: Path) -> None:
    library = shipped_library()
    path = write_bundle(library, tmp_path)
    assert path == tmp_path / BUNDLE_RELATIVE_PATH
    loaded = load_bundled_library(path)
    assert [p.name for p in loaded.playbooks] == [p.name for p in library.playbooks]
    assert [p.steps for p in loaded.playbooks] == [p.steps for p in library.playbooks]
    assert [dict(p.match) for p in loaded.playbooks] == [dict(p.match) for p in library.playbooks]
    # Same decisions on a real finding.
    event = json.loads((CORPUS / "guardduty" / "gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json").read_text())
    assert [p.name for p in loaded.match(event)] == [p.name for p in library.match(event)] != []


def test_same_playbooks_same_bytes_wherever_they_are_loaded_from(tmp_path: Path, monkeypatch) -> None:
    copy = copy_playbooks(tmp_path / "elsewhere")
    monkeypatch.chdir(SHIPPED.parent)
    relative = load_library(["playbooks"])
    absolute = load_library([copy.resolve()])
    assert bundle_bytes(relative) == bundle_bytes(absolute)
    files = [item["file"] for item in json.loads(bundle_bytes(absolute))["playbooks"]]
    assert files == sorted(p.name for p in SHIPPED.glob("*.yaml"))  # no build machine paths


def test_a_changed_playbook_changes_the_bundle(tmp_path: Path) -> None:
    copy = copy_playbooks(tmp_path)
    before = bundle_bytes(load_library([copy]))
    target = copy / "gd-default-notify.yaml"
    target.write_text(target.read_text().replace('">=", 4', '">=", 5'))
    assert bundle_bytes(load_library([copy])) != before
