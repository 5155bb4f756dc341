"""Tracing is opt-in: the deployed handler (``app.respond``, as Lambda calls it) in a fresh interpreter,
on the moto server over HTTP, with tracing off and on.

Off, the X-Ray SDK (~0.5 s of cold start) is never imported. On, Powertools' Tracer sends the
invocation's subsegments to the X-Ray daemon address Lambda gives the function: here a UDP socket of
the test, so what X-Ray would receive is what is checked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clampdown import sandbox as sb
from clampdown import scenarios
from tests.e2e.conftest import sqs_record_event

ROOT = Path(__file__).resolve().parents[2]
#: Lambda's handler call in a fresh interpreter: the response, then whether the X-Ray SDK was imported.
HANDLE_ONE_BATCH = """
import json, sys
import app
from clampdown.sandbox import LambdaContext
print(json.dumps(app.respond(json.loads(sys.stdin.read()), LambdaContext())))
print(json.dumps("aws_xray_sdk" in sys.modules))
"""
#: What the Lambda runtime sets for an actively traced invocation.
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def handle_in_lambda_like_process(stage: dict[str, Any], tracing: str, daemon: socket.socket) -> tuple[Any, bool]:
    event = sqs_record_event([scenarios.DEMO[0].build(stage["env"])])
    environ = {
        **os.environ,  # the stage's settings and AWS_ENDPOINT_URL (the moto server), set by the fixture
        "CLAMPDOWN_TRACING": tracing,
        "LAMBDA_TASK_ROOT": str(ROOT),
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
    }
    result = subprocess.run(
        [sys.executable, "-c", HANDLE_ONE_BATCH],
        input=json.dumps(event),
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    response, imported = result.stdout.strip().splitlines()[-2:]
    return json.loads(response), json.loads(imported)


def received(daemon: socket.socket) -> list[dict[str, Any]]:
    """The segment documents sent to the daemon (each datagram: a JSON header line, then the document)."""
    documents = []
    daemon.settimeout(0.2)
    while True:
        try:
            datagram = daemon.recv(65536).decode()
        except TimeoutError:
            return documents
        documents.append(json.loads(datagram.split("\n", 1)[1]))


@pytest.fixture
def daemon() -> Any:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


def key_status(stage: dict[str, Any]) -> str:
    iam = stage["session"].client("iam", region_name=sb.REGION)
    return str(iam.list_access_keys(UserName=stage["env"].user_name)["AccessKeyMetadata"][0]["Status"])


def test_with_tracing_off_the_xray_sdk_is_never_imported(stage: dict[str, Any], daemon: socket.socket) -> None:
    response, imported = handle_in_lambda_like_process(stage, "false", daemon)
    assert response == {"batchItemFailures": []}
    assert key_status(stage) == "Inactive", "the event was really handled"
    assert imported is False
    assert received(daemon) == []


def test_with_tracing_on_the_invocation_and_its_aws_calls_are_traced(
    stage: dict[str, Any], daemon: socket.socket
) -> None:
    response, imported = handle_in_lambda_like_process(stage, "true", daemon)
    assert response == {"batchItemFailures": []}
    assert key_status(stage) == "Inactive"
    assert imported is True
    documents = received(daemon)
    trace_id = TRACE_HEADER.split(";")[0].removeprefix("Root=")
    assert documents and all(d["trace_id"] == trace_id for d in documents)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_name.setdefault(document["name"], []).append(document)
    [batch] = by_name["## process_batch"]
    assert batch["annotations"] == {"ColdStart": True, "Service": "clampdown"}
    [message] = by_name["## message"]
    from chalicelib.incidents import DynamoIncidentStore

    table = stage["stage_env"]["CLAMPDOWN_INCIDENTS_TABLE"]
    [incident] = DynamoIncidentStore(stage["session"].client("dynamodb"), table).list_incidents()
    assert message["annotations"]["incident_id"] == incident.id
    assert message["parent_id"] == batch["id"]
    # botocore is patched: the containment call itself is a subsegment, inside the message's.
    [deactivate] = [d for d in by_name["iam"] if d["aws"]["operation"] == "UpdateAccessKey"]
    assert deactivate["namespace"] == "aws"
    assert {d["name"] for d in documents} >= {"dynamodb", "ssm", "iam"}
