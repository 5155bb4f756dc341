"""Leaf values of an event as the matchers see them.

EventBridge compares values type-aware: the string ``"5"`` never equals the number ``5``, ``true`` is
not ``1``, and numbers compare numerically (``3.0 == 3``) when they are exactly representable as
doubles. Each leaf therefore carries a *key* usable in hash tables: strings are themselves, numbers are
floats, and ``true``/``false``/``null`` are sentinels (so that ``True == 1.0`` cannot collide).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

STR, NUM, LITERAL, OTHER = range(4)

_HEX_AND_COLON = frozenset("0123456789abcdefABCDEF:")
_DIGITS = frozenset("0123456789")


class Token:
    """A JSON literal (``true``, ``false``, ``null``) used as a hash key."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


TRUE, FALSE, NULL = Token("true"), Token("false"), Token("null")


def comparable_number(value: Any) -> float | None:
    """``value`` as a double when event-ruler can compare it numerically, else ``None``.

    Mirrors ``ComparableNumber.generate``: the number must be finite and exactly representable as a
    double (so account ids as JSON numbers compare by text only, as in AWS).
    """
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else None  # false for inf and nan
    if kind is int:
        try:
            as_float = float(value)
        except OverflowError:
            return None
        return as_float if int(as_float) == value else None
    if isinstance(value, Decimal):
        try:
            as_float = float(value)
        except (OverflowError, ValueError):
            return None
        if as_float - as_float != 0.0:
            return None
        return as_float if Decimal(repr(as_float)) == value else None
    return None


def classify(value: Any) -> tuple[int, Any, float | None]:
    """``(kind, key, number)`` of a JSON scalar; ``number`` is set only for numerically comparable numbers.

    ``kind`` is ``OTHER`` for anything that is not a JSON scalar; such values equal no pattern value.
    """
    kind = type(value)
    if kind is str:
        return STR, value, None
    if kind is bool:
        return LITERAL, TRUE if value else FALSE, None
    if value is None:
        return LITERAL, NULL, None
    if kind is int or kind is float or isinstance(value, Decimal):
        number = comparable_number(value)
        return NUM, value if number is None else number, number
    if isinstance(value, str):
        return STR, str.__str__(value), None
    if isinstance(value, int):  # int subclasses other than bool (e.g. IntEnum)
        return classify(int(value))
    return OTHER, value, None


def looks_like_ip(text: str) -> bool:
    """event-ruler's cheap pre-check before parsing a string as an IP address literal."""
    if ":" in text:
        return all(ch in _HEX_AND_COLON for ch in text)
    parts = text.split(".")
    return len(parts) == 4 and all(part and all(ch in _DIGITS for ch in part) for part in parts)


def parse_ip(text: str) -> Any:
    """The IP address ``text`` denotes (IPv4-mapped IPv6 folded to IPv4, as Java does), else ``None``."""
    if not looks_like_ip(text):
        return None
    import ipaddress  # only events and patterns that involve IP addresses pay for it

    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


_UNSET: Any = object()


class Leaf:
    """One scalar value of the event at a field path, with the arrays it sits in.

    ``membership`` is a tuple of ``(array id, index)`` pairs, one per enclosing array: two leaves can be
    matched together only if they agree on every array they share (event-ruler's array consistency).
    """

    __slots__ = ("_ip", "_lower", "key", "kind", "membership", "num", "value")

    def __init__(self, value: Any, membership: tuple[tuple[int, int], ...]) -> None:
        self.value = value
        self.membership = membership
        if type(value) is str:
            self.kind, self.key, self.num = STR, value, None
        else:
            self.kind, self.key, self.num = classify(value)
        self._lower: Any = _UNSET
        self._ip: Any = _UNSET

    @property
    def ascii_lower(self) -> str | None:
        """The string lower-cased if it is ASCII (the only strings an ASCII ignore-case clause can match)."""
        if self._lower is _UNSET:
            text = self.key
            self._lower = text.lower() if self.kind == STR and text.isascii() else None
        return self._lower

    @property
    def ip(self) -> Any:
        """The IP address this string denotes, or ``None``."""
        if self._ip is _UNSET:
            self._ip = parse_ip(self.key) if self.kind == STR else None
        return self._ip

    def __repr__(self) -> str:
        return f"Leaf({self.value!r}, {self.membership!r})"
