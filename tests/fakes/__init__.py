"""Fakes of outside services that speak real HTTP on 127.0.0.1 (Slack, webhook receivers)."""
