"""Clampdown's Lambda handlers. Thin on purpose: all logic is in chalicelib."""

from chalice import Chalice

from chalicelib import handlers

app = Chalice(app_name="clampdown")

# The queue, its dead-letter queue and the EventBridge rules feeding it are created by the merge
# template (deploy/resources.json); the event source is pointed at that queue there.
QUEUE_NAME = "clampdown-events"


@app.on_sqs_message(queue=QUEUE_NAME, batch_size=10, maximum_batching_window_in_seconds=1, name="respond")
def respond(event):
    return handlers.handle_sqs(event.to_dict(), event.context)
