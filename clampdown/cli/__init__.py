"""``clampdown``: the command line. Each command is a thin layer over ``chalicelib``.

Exit codes: 0 success; 1 the command ran and found a problem (invalid playbooks, failed tests,
an AWS error); 2 wrong usage (unknown option, missing argument).
"""

from __future__ import annotations

from typing import Any

import click

from clampdown import __version__


class ClampdownGroup(click.Group):
    """Turns unexpected exceptions into one ``Error:`` line; ``--debug`` shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt, BrokenPipeError):
            raise  # click ends a closed output pipe (``| head``) quietly
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            hint = f"run clampdown --debug {ctx.invoked_subcommand} … for the traceback"
            raise click.ClickException(f"{type(exc).__name__}: {exc} ({hint})") from exc


@click.group(cls=ClampdownGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="clampdown")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Clampdown: automated incident response for AWS.

    \b
    Playbooks (YAML) match GuardDuty, Security Hub, CloudTrail and other EventBridge
    events and run containment actions. Try:
      clampdown validate playbooks/
      clampdown simulate tests/data/corpus/guardduty/
      clampdown simulate --explain --format json event.json
    """
    ctx.obj = {"debug": debug}


def _register() -> None:
    import importlib
    import pkgutil

    from clampdown.cli import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        cli.add_command(module.command)


_register()


def main() -> None:
    cli.main(prog_name="clampdown")
