"""The Slack stand-in fixture, shared with the functional notify tests (one definition)."""

from tests.functional.notify.conftest import slack

__all__ = ["slack"]
