"""The action registry: name → class, filled by :func:`register` as action modules are imported."""

from __future__ import annotations

from typing import TypeVar

from chalicelib.actions.base import Action

REGISTRY: dict[str, type[Action]] = {}

A = TypeVar("A", bound=type[Action])


def register(cls: A) -> A:
    """Class decorator: make an action available to playbooks under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not name:
        raise TypeError(f"{cls.__qualname__} has no name")
    if name in REGISTRY and REGISTRY[name] is not cls:
        raise TypeError(f"action {name!r} is registered twice ({REGISTRY[name].__qualname__}, {cls.__qualname__})")
    for permission in cls.permissions:
        if "*" in permission or ":" not in permission:
            raise TypeError(f"{name}: permission {permission!r} must be an exact IAM action such as iam:PutRolePolicy")
    REGISTRY[name] = cls
    return cls
