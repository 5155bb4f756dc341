"""The action registry: name → class, filled by :func:`register` as action modules are imported."""

from __future__ import annotations

from typing import TypeVar

from chalicelib.actions.base import Action

REGISTRY: dict[str, type[Action]] = {}

A = TypeVar("A", bound=type[Action])


def register(cls: A) -> A:
    """Class decorator: make an action available to playbooks under ``cls.name``.

    An action that changes a resource also reads it live first (the guardrails check its tags and real
    ARN): the permissions of those reads are added to the ones it declares, from the same table.
    """
    name = getattr(cls, "name", None)
    if not name:
        raise TypeError(f"{cls.__qualname__} has no name")
    if name in REGISTRY and REGISTRY[name] is not cls:
        raise TypeError(f"action {name!r} is registered twice ({REGISTRY[name].__qualname__}, {cls.__qualname__})")
    for permission in cls.permissions:
        if "*" in permission or ":" not in permission:
            raise TypeError(f"{name}: permission {permission!r} must be an exact IAM action such as iam:PutRolePolicy")
    if cls.changes_aws:
        from chalicelib.actions._live import read_permissions

        cls.permissions = tuple(dict.fromkeys((*cls.permissions, *read_permissions(cls.resource_kinds))))
    REGISTRY[name] = cls
    return cls
