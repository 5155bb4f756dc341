"""The playbook bundle: the validated library as the JSON file the deployed function reads.

The same playbooks always give the same bytes (sorted keys, fixed separators, relative file names),
so a rebuilt package only changes when a playbook does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chalicelib.playbooks.library import Library

#: Where the function looks for it (``chalicelib.wiring.BUNDLE_PATH``), relative to the project.
BUNDLE_RELATIVE_PATH = Path("chalicelib") / "_bundle" / "playbooks.json"


def bundle_document(library: Library) -> dict[str, Any]:
    """``Library.to_bundle()`` with file names relative to the library's folder (no build paths)."""
    document = library.to_bundle()
    files = [str(item.get("file") or "") for item in document["playbooks"]]
    located = [f for f in files if f]
    root = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in located]) if located else ""
    for item, name in zip(document["playbooks"], files, strict=True):
        item["file"] = Path(os.path.relpath(os.path.abspath(name), root)).as_posix() if name else ""
    return document


def bundle_bytes(library: Library) -> bytes:
    text = json.dumps(bundle_document(library), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode()


def write_bundle(library: Library, project_dir: Path) -> Path:
    """Write the bundle into the project (atomically); returns its path."""
    path = project_dir / BUNDLE_RELATIVE_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_bytes(bundle_bytes(library))
    os.replace(partial, path)
    return path
