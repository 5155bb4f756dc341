"""A Slack stand-in on 127.0.0.1: the Web API, incoming webhooks and ``response_url`` answered as
Slack answers them (Block Kit limits included), every request recorded.

The demo and drills post their alerts and approval requests to it through the real notifier, and the
tests use it to exercise real HTTP, real retries and real signatures. Never deployed.
"""
