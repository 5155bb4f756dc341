"""Clampdown's Lambda handlers. Thin on purpose: all logic is in chalicelib."""

from chalice import Chalice, Rate, Response

from chalicelib import handlers, slack_interactions

# configure_logs=False: Chalice would add a plain-text handler to the "clampdown" logger (the Powertools
# service's too), printing every line twice, once with a finding's newlines raw (forged log lines).
app = Chalice(app_name="clampdown", configure_logs=False)

# The queue, its dead-letter queue and the EventBridge rules feeding it are created by the merge
# template (deploy/resources.json); the event source is pointed at that queue there.
QUEUE_NAME = "clampdown-events"


@app.on_sqs_message(queue=QUEUE_NAME, batch_size=10, maximum_batching_window_in_seconds=1, name="respond")
def respond(event):
    return handlers.handle_sqs(event.to_dict(), event.context)


# Slack posts form-encoded bodies; the signature covers the raw bytes (app.current_request.raw_body).
SLACK_FORM = ["application/x-www-form-urlencoded"]


def _reply(reply: slack_interactions.Reply) -> Response:
    return Response(body=reply.body, status_code=reply.status, headers=dict(reply.headers))


@app.route("/slack/interactions", methods=["POST"], content_types=SLACK_FORM)
def slack_interactions_route():
    request = app.current_request
    return _reply(slack_interactions.handle_interaction(request.raw_body, request.headers))


@app.route("/slack/commands", methods=["POST"], content_types=SLACK_FORM)
def slack_commands_route():
    request = app.current_request
    return _reply(slack_interactions.handle_command(request.raw_body, request.headers))


@app.schedule(Rate(5, unit=Rate.MINUTES), name="expire_approvals")
def expire_approvals(event):
    return slack_interactions.expire_approvals()
