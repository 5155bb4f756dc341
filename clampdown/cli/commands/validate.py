"""``clampdown validate``: check playbooks against the schema, the actions and the pattern language."""

from __future__ import annotations

from pathlib import Path

import click

from clampdown.cli.common import default_playbooks_dir, echo_json, format_option


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@format_option("text", "json")
def command(paths: tuple[Path, ...], output_format: str) -> None:
    """Validate playbook files or directories (default: the playbook library).

    \b
    Every problem is printed as FILE:LINE: PATH: REASON, for example
      my-playbooks/iam.yaml:14: steps[1].params.role_name: 42 is not of type 'string'
    Exit code 1 when any playbook has an error; warnings do not fail.

    \b
    Examples:
      clampdown validate
      clampdown validate playbooks/gd-iam-compromised-credentials.yaml
      clampdown validate --format json my-playbooks/
    """
    from clampdown.playbooks.loader import find_playbook_files, validate_paths

    targets = list(paths) or [default_playbooks_dir()]
    missing = [str(p) for p in targets if not p.exists()]
    if missing:
        raise click.ClickException(f"no such file or directory: {', '.join(missing)}")
    files = find_playbook_files(targets)
    docs, issues = validate_paths(targets)
    errors = [i for i in issues if i.level == "error"]
    if output_format == "json":
        echo_json(
            {
                "files": [str(f) for f in files],
                "valid": not errors and bool(files),
                "issues": [
                    {
                        "file": i.file,
                        "line": i.line,
                        "path": list(i.path),
                        "level": i.level,
                        "message": i.message,
                    }
                    for i in issues
                ],
            }
        )
    else:
        for issue in issues:
            color = "red" if issue.level == "error" else "yellow"
            click.secho(str(issue), fg=color, err=False)
        if not files:
            click.secho("no playbook files found (*.yaml, *.yml)", fg="red")
        elif not errors:
            click.secho(f"{len(docs)} playbook(s) valid", fg="green")
        else:
            click.secho(f"{len(errors)} error(s) in {len(files)} file(s)", fg="red")
    if errors or not files:
        raise SystemExit(1)
