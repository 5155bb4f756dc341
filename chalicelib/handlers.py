"""Lambda-facing glue between Chalice handlers and the responder: batches, logs, metrics, tracing.

Powertools' batch processor reports partial failures, so one bad message is retried (and after
``maxReceiveCount`` lands in the dead-letter queue) while the rest of the batch is acknowledged.

Tracing is opt-in (``CLAMPDOWN_TRACING``): Powertools' Tracer imports the X-Ray SDK, about half a
second of cold start, so with tracing off nothing here imports it.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

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


@cache
def tracer() -> Any:
    """Powertools' Tracer (X-Ray): created on the first traced batch, never when tracing is off.

    It patches botocore, so every AWS call the responder makes is a subsegment of the invocation.
    """
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


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

    def correlate(self, incident_id: str | None) -> None:
        """Every log line from here on carries the incident id (``correlation_id``), until cleared."""
        if incident_id:
            logger().set_correlation_id(incident_id)
        else:
            logger().remove_keys(["correlation_id"])


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
    if not _tracing():
        _handle_message(record)
        return
    with tracer().provider.in_subsegment("## message") as subsegment:
        subsegment.put_annotation("message_id", record.message_id)
        incident = _handle_message(record)
        if incident:
            subsegment.put_annotation("incident_id", incident)


def _handle_message(record: Any) -> str | None:
    """Handles one SQS record; returns the incident it concerned (the logs' correlation id), if any."""
    logger().remove_keys(["correlation_id"])
    try:
        message = parse_body(record.body)
        report = _responder().handle(message)
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
    return str(report.incidents[0]) if report.incidents else None


def _responder() -> Any:
    """The process-wide responder, built on the first event (``chalicelib.wiring`` and what it pulls in, the
    findings model, the pattern engine and the playbook library, are imported then: ``import app`` stays light)."""
    from chalicelib import wiring

    return wiring.responder(PowertoolsTelemetry())


def _tracing() -> bool:
    return bool(_responder().runner.settings.tracing)


def handle_sqs(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The SQS entry point: returns ``batchItemFailures`` for the records that failed."""
    if _tracing():
        return dict(_traced_batch()(event, context))
    return process_batch(event, context)


@cache
def _traced_batch() -> Any:
    """The batch as the invocation's traced handler (``## process_batch``, annotated ColdStart and Service)."""
    return tracer().capture_lambda_handler(process_batch, capture_response=False)


def process_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One SQS batch through the responder, with Powertools' partial batch failures."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    responder = _responder()
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
        logger().remove_keys(["correlation_id"])  # nothing after the batch belongs to its last incident
        if PowertoolsTelemetry().enabled:
            metrics().flush_metrics()
    return dict(response)
