"""``clampdown bundle``: write the validated playbook library where the deployed function reads it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from clampdown.cli.commands.package import project_library, project_option, resolve_project
from clampdown.cli.common import playbooks_option


@click.command("bundle")
@playbooks_option
@project_option
def command(playbooks_dir: Path | None, project_dir: Path | None) -> None:
    """Validate the playbooks and write chalicelib/_bundle/playbooks.json.

    \b
    The function runs exactly this file (no YAML or schema checks at run time). The
    same playbooks always give the same bytes. Stage overrides (CLAMPDOWN_OVERRIDES)
    are applied by the function, not here. `clampdown package` runs this for you.

    \b
    Examples:
      clampdown bundle
      clampdown bundle --playbooks my-playbooks/
    """
    from clampdown.deploy.bundle import bundle_bytes, write_bundle

    project = resolve_project(project_dir)
    library = project_library(project, playbooks_dir)
    path = write_bundle(library, project)
    digest = hashlib.sha256(bundle_bytes(library)).hexdigest()[:12]
    click.echo(f"wrote {path} ({len(library)} playbooks, {path.stat().st_size} bytes, sha256 {digest})")
