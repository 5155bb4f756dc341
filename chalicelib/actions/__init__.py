"""Containment and notification actions, registered by name.

Adding an action is one class in one module of this package: the registry finds it,
``clampdown validate`` learns its schema and ``clampdown policy`` its permissions.
"""

from __future__ import annotations

import importlib
import pkgutil

from chalicelib.actions.base import (
    Action,
    ActionContext,
    ActionError,
    ActionPlan,
    ActionResult,
    ApiCall,
    Status,
)
from chalicelib.actions.registry import REGISTRY, register

_INFRASTRUCTURE = {"base", "registry"}

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in _INFRASTRUCTURE and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")


def get_action(name: str) -> type[Action]:
    """The action class registered under ``name`` (KeyError names the known ones)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown action {name!r}") from None


__all__ = [
    "REGISTRY",
    "Action",
    "ActionContext",
    "ActionError",
    "ActionPlan",
    "ActionResult",
    "ApiCall",
    "Status",
    "get_action",
    "register",
]
