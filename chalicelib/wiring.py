"""Builds the deployed responder from the environment, once per Lambda instance, lazily.

Nothing here runs at import time: the cold start pays only for what the first event needs.
The playbook library comes from the bundle that ``clampdown bundle`` wrote from a validated
library (``chalicelib/_bundle/playbooks.json``), so the function runs exactly what was validated
without importing PyYAML or jsonschema.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from chalicelib.guardrails import Guardrails
from chalicelib.playbooks.library import Library
from chalicelib.settings import Settings

BUNDLE_PATH = Path(__file__).resolve().parent / "_bundle" / "playbooks.json"

_lock = threading.Lock()
_responder: Any = None


class BundleMissing(RuntimeError):
    """The deployment package has no playbook bundle."""


def load_bundled_library(path: Path | None = None) -> Library:
    bundle = Path(os.environ.get("CLAMPDOWN_BUNDLE") or path or BUNDLE_PATH)
    try:
        document = json.loads(bundle.read_text())
    except FileNotFoundError:
        raise BundleMissing(
            f"no playbook bundle at {bundle}: run `clampdown bundle` before `chalice package` or `chalice deploy`"
        ) from None
    return Library.from_bundle(document)


def guardrails_for(settings: Settings, home_account: str | None = None) -> Guardrails:
    """Configured guardrails plus the responder's own identities, which are never targets.

    Its roles (``clampdown-*``) and function exist in the home account only: scoped to it, so that a
    role or function an attacker names ``clampdown-...`` in a member account is neither protected
    from containment nor taken for the responder's own API calls. Without a known home account, any.
    """
    home = home_account or os.environ.get("CLAMPDOWN_HOME_ACCOUNT") or "*"
    configured = dict(settings.guardrails)
    own_roles = [*list(configured.get("own_role_names", ())), settings.member_role_name]
    own_role_arns = [*list(configured.get("own_role_arns", ())), f"arn:aws:iam::{home}:role/clampdown-*"]
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    own_functions = list(configured.get("own_function_arns", ())) + (
        [f"arn:aws:lambda:*:{home}:function:{function}"] if function else []
    )
    configured.update(own_role_names=own_roles, own_role_arns=own_role_arns, own_function_arns=own_functions)
    return Guardrails.from_settings(configured)


def build_runner(settings: Settings, *, session: Any = None, telemetry: Any = None) -> Any:
    """The step runner on real AWS: clients, incident store, guardrails, kill switch, evidence, idempotency."""
    import boto3

    from chalicelib.aws import AwsClients
    from chalicelib.evidence import S3EvidenceStore
    from chalicelib.executor import IdempotencyGuard, StepRunner
    from chalicelib.incidents import DynamoIncidentStore
    from chalicelib.killswitch import KillSwitch
    from chalicelib.telemetry import CountingTelemetry

    if not settings.incidents_table:
        raise RuntimeError("CLAMPDOWN_INCIDENTS_TABLE is not set")
    session = session or boto3.session.Session()
    clients = AwsClients(
        home_account=os.environ.get("CLAMPDOWN_HOME_ACCOUNT") or None,
        member_role_name=settings.member_role_name,
        default_region=settings.region,
        external_id=settings.external_id,
        session_factory=lambda: session,
    )
    store = DynamoIncidentStore(
        clients.client("dynamodb", account=None, region=settings.region), settings.incidents_table
    )
    evidence = S3EvidenceStore(settings.evidence_bucket, clients, settings.region) if settings.evidence_bucket else None
    idempotency = (
        IdempotencyGuard(settings.idempotency_table, boto3_session=session) if settings.idempotency_table else None
    )
    return StepRunner(
        settings=settings,
        store=store,
        aws=clients,
        guardrails=guardrails_for(settings, clients.home()),
        kill_switch=KillSwitch(
            settings.kill_switch_parameter, ssm=lambda: clients.client("ssm", account=None, region=settings.region)
        ),
        evidence=evidence,
        idempotency=idempotency,
        telemetry=telemetry or CountingTelemetry(),
    )


def build_responder(
    settings: Settings,
    *,
    library: Library | None = None,
    notifier: Any = None,
    telemetry: Any = None,
    session: Any = None,
) -> Any:
    """The full responder on real AWS (or whatever ``AWS_ENDPOINT_URL`` points at)."""
    from chalicelib.intake import Intake
    from chalicelib.notify.factory import notifier_from_settings
    from chalicelib.responder import Responder

    runner = build_runner(settings, session=session, telemetry=telemetry)
    library = (library or load_bundled_library()).with_overrides(settings.overrides)
    return Responder(
        library=library,
        store=runner.store,
        runner=runner,
        intake=Intake(
            runner.aws.home(), settings.accounts, settings.custom_sources, runner.guardrails, library.event_types()
        ),
        notifier=notifier or notifier_from_settings(settings, runner.aws, runner.store, runner.telemetry),
        telemetry=runner.telemetry,
    )


def responder(telemetry: Any = None) -> Any:
    """The process-wide responder (built on first use)."""
    global _responder
    with _lock:
        if _responder is None:
            _responder = build_responder(Settings.from_env(), telemetry=telemetry)
        return _responder


def reset() -> None:
    """Forget the process-wide responder (tests that change the environment)."""
    global _responder
    with _lock:
        _responder = None
