"""Lambda-facing glue between Chalice handlers and the responder: batches, logs, metrics.

Powertools' batch processor reports partial failures, so one bad message is retried (and after
``maxReceiveCount`` lands in the dead-letter queue) while the rest of the batch is acknowledged.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from chalicelib import wiring

SERVICE = "clampdown"
NAMESPACE = "Clampdown"


@cache
def logger() -> Any:
    from functools import partial

    from aws_lambda_powertools import Logger

    # ASCII only (Powertools' default keeps non-ASCII as is): attacker-controlled text from findings
    # (newlines, terminal escapes, U+2028, U+0085, bidi overrides) stays a JSON escape, so a log line
    # is always one line, and no reader of the logs can be made to see a forged one.
    serializer = partial(json.dumps, default=str, separators=(",", ":"), ensure_ascii=True)
    return Logger(service=SERVICE, json_serializer=serializer)


@cache
def metrics() -> Any:
    from aws_lambda_powertools import Metrics

    return Metrics(namespace=NAMESPACE, service=SERVICE)


class PowertoolsTelemetry:
    """Telemetry as CloudWatch EMF metrics and JSON log lines."""

    def __init__(self) -> None:
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        # Powertools keeps (and at 100 values prints) metrics even when disabled: skip them instead.
        self.enabled = not is_metrics_disabled()

    def count(self, name: str, value: float = 1) -> None:
        if self.enabled:
            from aws_lambda_powertools.metrics import MetricUnit

            metrics().add_metric(name=name, unit=MetricUnit.Count, value=value)

    def timing(self, name: str, seconds: float) -> None:
        if self.enabled:
            from aws_lambda_powertools.metrics import MetricUnit

            metrics().add_metric(name=name, unit=MetricUnit.Seconds, value=seconds)

    def event(self, message: str, **fields: Any) -> None:
        logger().info(message, extra=fields)


def parse_body(body: str) -> dict[str, Any]:
    """A message body as a JSON object; ``ValueError`` saying why for anything else (not JSON, not an
    object, nested too deeply for the interpreter's stack). Lone surrogates are replaced before anything
    reads the event (``chalicelib.findings.surrogates``): an attacker's ``"\\ud800"`` would otherwise
    make every call carrying it fail, and the finding would never be contained."""
    from chalicelib.findings.surrogates import may_hold_surrogates, replace_surrogates

    try:
        message = json.loads(body)
    except RecursionError:
        raise ValueError("the message body is JSON nested too deeply") from None
    if not isinstance(message, dict):
        raise ValueError(f"the message body is JSON {type(message).__name__}, not an object")
    if may_hold_surrogates(body):
        replace_surrogates(message)
    return message


def _handle_record(record: Any) -> None:
    logger().remove_keys(["correlation_id"])
    try:
        message = parse_body(record.body)
        report = wiring.responder(PowertoolsTelemetry()).handle(message)
    except Exception as exc:
        # The message stays on the queue (then the DLQ); the log says exactly why.
        logger().error(
            "message failed",
            extra={"message_id": record.message_id, "error": f"{type(exc).__name__}: {str(exc)[:1000]}"},
        )
        PowertoolsTelemetry().count("MessagesFailed")
        raise
    if report.incidents:
        logger().append_keys(correlation_id=report.incidents[0])
    logger().info(
        "message handled",
        extra={
            "message_id": record.message_id,
            "incidents": report.incidents,
            "refused": report.refused,
            "steps": [{"key": s.key, "status": s.status} for s in report.steps],
        },
    )


def handle_sqs(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The SQS entry point: returns ``batchItemFailures`` for the records that failed."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    responder = wiring.responder(PowertoolsTelemetry())
    if (
        responder.runner.idempotency is not None
        and context is not None
        and hasattr(context, "get_remaining_time_in_millis")
    ):
        responder.runner.idempotency.register_lambda_context(context)
    try:
        response = process_partial_response(
            event=event,
            record_handler=_handle_record,
            processor=BatchProcessor(event_type=EventType.SQS),
            context=context,
        )
    finally:
        if PowertoolsTelemetry().enabled:
            metrics().flush_metrics()
    return dict(response)
