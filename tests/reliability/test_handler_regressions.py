"""Regressions the handler fuzzer found, each through the Lambda SQS handler on a fresh sandbox deployment.

(Kept apart from ``test_fuzz_handler.py``, whose module-wide deployment would share moto's state.)
"""

from __future__ import annotations

import json

from tests.reliability.harness import deployment
from tests.reliability.test_fuzz_handler import deliver


def test_a_lone_surrogate_in_a_finding_does_not_stop_containment() -> None:
    """JSON lets "\\ud800" through and no AWS API accepts it: found by the fuzzer as a message that failed
    forever (an attacker's way to never be contained). It is replaced when the message is read."""
    from clampdown import scenarios

    with deployment() as stage:
        event = scenarios.DEMO[0].build(stage.box.env)
        event["detail"]["title"] = "lone \ud800 surrogate"
        event["detail"]["resource"]["accessKeyDetails"]["principalId"] = "\udc00"
        body = json.dumps(event)
        assert "\\ud800" in body

        assert deliver([body]) == set()
        iam = stage.client("iam")
        assert iam.list_access_keys(UserName=stage.box.env.user_name)["AccessKeyMetadata"][0]["Status"] == "Inactive"
        [incident] = stage.store().list_incidents()
        assert "\ufffd" in incident.title


def test_a_target_that_cannot_be_planned_skips_its_step_not_the_event() -> None:
    """Found by the fuzzer: an instance id the ``tag`` action cannot address ("0") raised at planning time
    and failed the whole message (every finding of the event, every step, retried into the DLQ)."""
    from clampdown import scenarios

    with deployment() as stage:
        event = scenarios.DEMO[2].build(stage.box.env)
        event["detail"]["resource"]["instanceDetails"]["instanceId"] = "0"

        assert deliver([json.dumps(event)]) == set()
        [incident] = stage.store().list_incidents()
        steps = {s.action: s for s in stage.store().list_steps(incident.id)}
        assert steps["tag"].status == "skipped" and (steps["tag"].reason or "").startswith(
            "cannot plan: InvalidInstanceID.Malformed: '0' is not an EC2 instance id"
        )
        assert all(s.status != "running" for s in steps.values())
