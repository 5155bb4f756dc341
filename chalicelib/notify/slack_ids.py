"""The shapes of Slack ids we accept from configuration and from Slack's requests (one definition)."""

from __future__ import annotations

import re

#: A user (``U…``, or ``W…`` on Enterprise Grid).
USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
#: A user group (``S…``).
GROUP_ID = re.compile(r"S[A-Z0-9]{2,30}")
