"""Slack Block Kit messages as the compact text the demo prints."""

from __future__ import annotations

from clampdown.slack_text import plain, render


def test_markup_is_shown_as_slack_shows_it() -> None:
    text = "*Status* <@U0ONCALL> <!subteam^S0ONCALL> <https://console.aws.amazon.com/x|GuardDuty> &lt;b&gt; &amp;"
    assert plain(text) == "Status @U0ONCALL @S0ONCALL GuardDuty <b> &"
    assert (
        plain("Expires <!date^1700000000^{date_short_pretty}|2023-11-14 22:13 UTC>") == "Expires 2023-11-14 22:13 UTC"
    )


def test_stars_inside_code_are_kept() -> None:
    block = '*Plan* — 1 API call:\n`iam:PutUserPolicy`\n```\n{"Action": "*", "Resource": "*"}\n```'
    assert plain(block) == 'Plan — 1 API call:\niam:PutUserPolicy\n{"Action": "*", "Resource": "*"}'


def test_a_message_renders_header_fields_sections_context_and_buttons() -> None:
    message = {
        "text": "fallback",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "🟧 HIGH · Instance web-1 talks to a C&C server"},
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Status*\n✅ contained"},
                    {"type": "mrkdwn", "text": "*Severity*\nHIGH (8)"},
                ],
            },
            {"type": "section", "text": {"type": "plain_text", "text": "A long description."}},
            {"type": "divider"},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*Steps*\n✅ *1. ec2.isolate-instance* on `i-1` — contained"},
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Clampdown · deliveries 1"}]},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Approve"}},
                    {"type": "button", "text": {"type": "plain_text", "text": "Deny"}},
                ],
            },
        ],
    }
    assert render(message) == [
        "🟧 HIGH · Instance web-1 talks to a C&C server",
        "Status: ✅ contained · Severity: HIGH (8)",
        "A long description.",
        "Steps",
        "✅ 1. ec2.isolate-instance on i-1 — contained",
        "Clampdown · deliveries 1",
        "[Approve] [Deny]",
    ]
    headline = render(message, keep=lambda b: b["type"] == "header")
    assert headline == ["🟧 HIGH · Instance web-1 talks to a C&C server"]
    assert render({"text": "only &lt;text&gt;"}) == ["only <text>"]
