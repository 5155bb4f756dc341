"""Lone UTF-16 surrogates in event text.

JSON lets them through (``"\\ud800"`` decodes to a lone surrogate) and no AWS API, no UTF-8 encoder and
no terminal accepts them: one in a field an attacker controls would make every API call, log line or
printed report that carries it fail. Events are cleaned as they are read (the Lambda handler and the
CLI's input reader): each lone surrogate becomes U+FFFD.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Cheap test on the raw text: only text with a ``\uD800``-``\uDFFF`` escape (or a raw one) needs a walk.
_HINT = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def may_hold_surrogates(text: str) -> bool:
    return _HINT.search(text) is not None


def replace_surrogates(document: Any) -> Any:
    """``document`` with every lone surrogate in its strings (keys too) replaced, in place where it can be;
    without recursion (a document may be nested as deep as the parser allows)."""
    if isinstance(document, str):
        return _SURROGATE.sub("\ufffd", document)
    stack: list[Any] = [document] if isinstance(document, dict | list) else []
    while stack:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in items:
            if isinstance(value, str):
                value = _SURROGATE.sub("\ufffd", value)
            elif isinstance(value, dict | list):
                stack.append(value)
            if isinstance(key, str) and _SURROGATE.search(key):
                del node[key]
                key = _SURROGATE.sub("\ufffd", key)
            node[key] = value
    return document
