"""Resource-policy statements that grant access to everyone: one definition for Lambda and S3.

A statement is *public* when it allows a wildcard principal (``"*"``, ``{"AWS": "*"}``,
``{"AWS": ["*", …]}``, or ``NotPrincipal`` in an Allow) and no condition pins the caller down to
fixed values. This follows S3's documented meaning of "public": a condition restricts only when it
names a fixed value (no ``*``/``?`` wildcard, no ``${policy variable}``) for one of
:data:`RESTRICTING_KEYS` with an operator that must match (``StringEquals``, ``ArnLike``…, not a
``Not…`` operator, not ``…IfExists``, not ``ForAllValues:``, which all pass when the key is absent).

Pure: no AWS, no I/O. Every statement may come from an attacker-edited policy, so nothing here
trusts its shape.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

#: Condition keys (lower-case) that identify the caller or its origin.
RESTRICTING_KEYS = frozenset(
    {
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:sourceowner",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceip",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "s3:dataaccesspointarn",
        "s3:dataaccesspointaccount",
    }
)
_MATCHING_OPERATORS = frozenset(
    {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike", "ipaddress"}
)
#: IPv4/IPv6 ranges wider than these prefixes count as "anyone" (S3's rule for aws:SourceIp).
_MIN_PREFIX = {4: 8, 6: 32}


def load(document: Any) -> dict[str, Any] | None:
    """A policy document from a JSON string or a mapping; ``None`` for nothing or non-objects."""
    if document is None or document == "":
        return None
    if isinstance(document, str | bytes):
        document = json.loads(document)
    return dict(document) if isinstance(document, Mapping) else None


def statements(document: Mapping[str, Any] | None) -> list[Any]:
    """The ``Statement`` list of a policy (a single statement object becomes a list of one)."""
    if not document:
        return []
    found = document.get("Statement", [])
    if isinstance(found, Mapping):
        return [found]
    return list(found) if isinstance(found, list) else []


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _wildcard_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(v == "*" for values in principal.values() for v in _values(values))
    return False


def _fixed(value: Any, ip: bool) -> bool:
    if not isinstance(value, str) or not value or "*" in value or "?" in value or "${" in value:
        return False
    if not ip:
        return True
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return network.prefixlen >= _MIN_PREFIX[network.version]


def restricting_condition(condition: Any) -> bool:
    """Does this ``Condition`` block pin the caller to fixed identities, accounts or networks?"""
    if not isinstance(condition, Mapping):
        return False
    for operator, clauses in condition.items():
        if not isinstance(operator, str) or not isinstance(clauses, Mapping):
            continue
        op = operator.lower()
        if op.startswith("forallvalues:") or op.endswith("ifexists"):
            continue
        op = op.removeprefix("foranyvalue:")
        if op not in _MATCHING_OPERATORS:
            continue
        for key, value in clauses.items():
            if not isinstance(key, str) or key.lower() not in RESTRICTING_KEYS:
                continue
            values = _values(value)
            if values and all(_fixed(v, ip=op == "ipaddress") for v in values):
                return True
    return False


def is_public_principal(statement: Any) -> bool:
    """Does this statement allow anyone (a wildcard principal, not restricted by a condition)?"""
    if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
        return False
    wildcard = "NotPrincipal" in statement or _wildcard_principal(statement.get("Principal"))
    return wildcard and not restricting_condition(statement.get("Condition"))


def split_public(document: Mapping[str, Any] | None) -> tuple[list[Any], list[Any]]:
    """(statements kept, public statements removed), each in the policy's order."""
    kept: list[Any] = []
    public: list[Any] = []
    for statement in statements(document):
        (public if is_public_principal(statement) else kept).append(statement)
    return kept, public


def with_statements(document: Mapping[str, Any], kept: list[Any]) -> dict[str, Any]:
    """``document`` with its statements replaced (Version, Id and other keys preserved)."""
    return {**document, "Statement": kept}
