"""The packaging pipeline: playbooks → bundle → policies → rules → templates → ``chalice package``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.playbooks.library import Library
from clampdown.deploy.bundle import write_bundle
from clampdown.deploy.policy import actions_of, policy_for, render_literal
from clampdown.deploy.rules import RuleSet, generate_rules
from clampdown.deploy.stage import FUNCTION_POLICIES, Stage
from clampdown.deploy.templates import member_role_template, merge_template

MERGE_TEMPLATE = "merge-template.json"
#: Distributions the Lambda Python runtime provides that only botocore needs: Chalice vendors them when a
#: requirement depends on botocore (aws-xray-sdk does), but a second botocore would shadow the runtime's
#: and break its pairing with the runtime's boto3. (jmespath stays: Powertools needs it too.)
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "python_dateutil", "six"})
MEMBER_TEMPLATE = "member-role.json"
_LIST_FUNCTIONS = """\
import json, sys
sys.path.insert(0, sys.argv[1])
from app import app
names = [s.name for s in app.event_sources] + [f.name for f in app.pure_lambda_functions]
if app.routes:
    names.append("api_handler")
if app.websocket_handlers:
    names.append("websocket_handler")
print(json.dumps(sorted(set(names))))
"""


class BuildError(RuntimeError):
    """A packaging step failed; the message says which and why."""


@dataclass
class PackageResult:
    outdir: Path
    template: Path
    zip_path: Path
    merge_template: Path
    member_template: Path
    bundle: Path
    policy_files: list[Path]
    functions: list[str]
    rules: RuleSet
    policy_actions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def zip_size(self) -> int:
        return self.zip_path.stat().st_size


def discover_functions(project_dir: Path) -> list[str]:
    """The Lambda functions ``app.py`` defines (Chalice's names), read from the app in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", _LIST_FUNCTIONS, str(project_dir.resolve())],
        capture_output=True,
        text=True,
        cwd=project_dir,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"cannot import {project_dir / 'app.py'}: {result.stderr.strip().splitlines()[-1:]}")
    names: list[str] = json.loads(result.stdout)
    return names


def write_policy_files(stage: Stage, library: Library, functions: list[str]) -> list[Path]:
    """The ``iam_policy_file`` of each function, as config.json names it (pseudo-parameters as ``*``)."""
    written: dict[Path, str] = {}
    for function in functions:
        kind = FUNCTION_POLICIES.get(function)
        if kind is None:
            raise BuildError(f"app.py function {function!r} has no policy (clampdown.deploy.stage.FUNCTION_POLICIES)")
        path = stage.policy_file(function)
        if path is None:
            raise BuildError(f"stage {stage.name}: config.json gives function {function!r} no iam_policy_file")
        if written.get(path, kind) != kind:
            raise BuildError(
                f"stage {stage.name}: {path.name} would hold two different policies ({written[path]}, {kind})"
            )
        document = render_literal(policy_for(kind, stage, library))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n")
        written[path] = kind
    return sorted(written)


def _distribution(dist_info: str) -> str:
    """``Foo_Bar-1.2.dist-info/RECORD`` → ``foo_bar`` (the normalized distribution name)."""
    return dist_info.split("/")[0].removesuffix(".dist-info").rsplit("-", 1)[0].replace("-", "_").lower()


def strip_runtime_provided(zip_path: Path) -> list[str]:
    """Removes from the package every file of the :data:`RUNTIME_PROVIDED` distributions (by their
    ``RECORD``); returns the distributions removed."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        records = {
            name: archive.read(name).decode()
            for name in names
            if name.endswith(".dist-info/RECORD") and name.count("/") == 1
        }
        removed = sorted({_distribution(name) for name in records} & RUNTIME_PROVIDED)
        if not removed:
            return []
        drop = {
            line.split(",")[0]
            for name, text in records.items()
            if _distribution(name) in removed
            for line in text.splitlines()
            if line
        }
        drop |= {n for n in names if n.split("/")[0].endswith(".dist-info") and _distribution(n) in removed}
        stripped = zip_path.with_suffix(".stripped")
        with zipfile.ZipFile(stripped, "w", zipfile.ZIP_DEFLATED) as out:
            for info in archive.infolist():
                if info.filename not in drop:
                    out.writestr(info, archive.read(info.filename))
    stripped.replace(zip_path)
    return removed


def chalice_executable() -> str:
    beside = Path(sys.executable).with_name("chalice")
    found = str(beside) if beside.exists() else shutil.which("chalice")
    if not found:
        raise BuildError("the chalice command is not installed (pip install chalice)")
    return found


def package(project_dir: Path, stage_name: str, outdir: Path, library: Library) -> PackageResult:
    """Everything up to the CloudFormation artefacts in ``outdir`` (sam.json, deployment.zip, member-role.json)."""
    started = time.monotonic()
    if not os.environ.get("AWS_DEFAULT_REGION"):
        raise BuildError("AWS_DEFAULT_REGION is not set (chalice package needs it)")
    outdir = outdir.resolve()
    if outdir.exists() and any(outdir.iterdir()):
        raise BuildError(f"{outdir} is not empty")
    stage = Stage.load(project_dir, stage_name)
    functions = discover_functions(project_dir)
    library = library.with_overrides(stage.settings.overrides)
    bundle = write_bundle(library, project_dir)
    policy_files = write_policy_files(stage, library, functions)
    rules = generate_rules(library, stage.settings.custom_sources)
    merge = merge_template(stage, library, rules, functions)
    with tempfile.TemporaryDirectory(prefix="clampdown-package-") as tmp:
        merge_path = Path(tmp) / MERGE_TEMPLATE
        merge_path.write_text(json.dumps(merge, indent=2) + "\n")
        result = subprocess.run(
            [
                chalice_executable(),
                "--project-dir",
                str(project_dir.resolve()),
                "package",
                "--stage",
                stage_name,
                "--merge-template",
                str(merge_path),
                str(outdir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BuildError(f"chalice package failed:\n{(result.stderr or result.stdout).strip()}")
        shutil.copyfile(merge_path, outdir / MERGE_TEMPLATE)
    strip_runtime_provided(outdir / "deployment.zip")
    member_path = outdir / MEMBER_TEMPLATE
    member_path.write_text(json.dumps(member_role_template(stage, library), indent=2) + "\n")
    return PackageResult(
        outdir=outdir,
        template=outdir / "sam.json",
        zip_path=outdir / "deployment.zip",
        merge_template=outdir / MERGE_TEMPLATE,
        member_template=member_path,
        bundle=bundle,
        policy_files=policy_files,
        functions=functions,
        rules=rules,
        policy_actions={
            kind: len(actions_of(policy_for(kind, stage, library)))
            for kind in sorted({*FUNCTION_POLICIES.values(), "member"})
        },
        seconds=time.monotonic() - started,
    )


def summary(result: PackageResult) -> dict[str, Any]:
    return {
        "outdir": str(result.outdir),
        "template": str(result.template),
        "deployment_zip": str(result.zip_path),
        "deployment_zip_bytes": result.zip_size,
        "member_role_template": str(result.member_template),
        "merge_template": str(result.merge_template),
        "bundle": str(result.bundle),
        "policy_files": [str(p) for p in result.policy_files],
        "functions": result.functions,
        "rules": len(result.rules.rules),
        "policy_actions": result.policy_actions,
        "seconds": round(result.seconds, 1),
    }
