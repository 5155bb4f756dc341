"""String operators with event-ruler's exact semantics: ignore-case comparison and wildcards.

No regular expressions are built from pattern or event text: wildcards are matched with ``str.find``
(linear, no backtracking), ignore-case with per-character alternatives.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Largest wildcard complexity accepted for one field. AWS does not publish its limit; it accepts
#: complexity 9 (three ``*:stack/<name>/*`` values on one field, ``/Users/*/dir/dir/dir/dir/dir/doc.txt``
#: is 7) and rejects 11 (``*:*:*:*:*:event-bus/*``) and 12 (four ``*:stack/<name>/*`` values).
MAX_WILDCARD_COMPLEXITY = 10
TOO_COMPLEX = (
    "Rule is too complex - try using fewer wildcard characters or fewer repeating character "
    "sequences after a wildcard character"
)
_MAX_COMPLEXITY_STATES = 20_000


class WildcardError(ValueError):
    """A wildcard value event-ruler refuses; the message is event-ruler's."""


def case_alternatives(text: str) -> tuple[tuple[str, ...], ...]:
    """Per character, the strings an equals-ignore-case clause accepts for it.

    event-ruler accepts, for each UTF-16 unit of the pattern, its lower-case or its upper-case form
    (Java ``toLowerCase``/``toUpperCase`` with ``Locale.ROOT``); a character outside the BMP is two
    surrogate units that only match themselves.
    """
    out: list[tuple[str, ...]] = []
    for ch in text:
        if ord(ch) > 0xFFFF:
            out.append((ch,))
            continue
        lower, upper = ch.lower(), ch.upper()
        out.append((lower,) if lower == upper else (lower, upper))
    return tuple(out)


class IgnoreCase:
    """An equals-ignore-case string usable as a whole-value, prefix or suffix test."""

    __slots__ = ("alternatives", "ascii", "lower", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.ascii = text.isascii()
        self.lower = text.lower()
        self.alternatives = () if self.ascii else case_alternatives(text)

    def equals(self, value: str) -> bool:
        if self.ascii:
            return len(value) == len(self.lower) and value.isascii() and value.lower() == self.lower
        return len(value) in _ends(self.alternatives, value, 0)

    def starts(self, value: str) -> bool:
        if self.ascii:
            head = value[: len(self.lower)]
            return len(head) == len(self.lower) and head.isascii() and head.lower() == self.lower
        return bool(_ends(self.alternatives, value, 0))

    def ends(self, value: str) -> bool:
        if self.ascii:
            size = len(self.lower)
            tail = value[len(value) - size :] if size else ""
            return len(tail) == size and tail.isascii() and tail.lower() == self.lower
        return bool(_starts_backwards(self.alternatives, value))


def _ends(alternatives: Sequence[tuple[str, ...]], value: str, start: int) -> set[int]:
    """Positions in ``value`` where a match of ``alternatives`` starting at ``start`` can end."""
    positions = {start}
    for options in alternatives:
        positions = {pos + len(o) for pos in positions for o in options if value.startswith(o, pos)}
        if not positions:
            break
    return positions


def _starts_backwards(alternatives: Sequence[tuple[str, ...]], value: str) -> set[int]:
    """Positions where a match of ``alternatives`` ending exactly at the end of ``value`` can start."""
    positions = {len(value)}
    for options in reversed(alternatives):
        positions = {
            pos - len(o) for pos in positions for o in options if pos >= len(o) and value.startswith(o, pos - len(o))
        }
        if not positions:
            break
    return positions


# --- wildcards ---------------------------------------------------------------------------------------


def parse_wildcard(text: str) -> tuple[str, ...]:
    """The literal pieces between the ``*`` of a wildcard value (``\\*`` and ``\\\\`` are literals).

    Raises ``WildcardError`` with event-ruler's message; positions count UTF-8 bytes of the value
    *with* its JSON quotes, as event-ruler does.
    """
    raw = text.encode("utf-8", "surrogatepass")
    pieces: list[bytes] = []
    current = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == 0x2A:  # *
            if i + 1 < len(raw) and raw[i + 1] == 0x2A:
                raise WildcardError(f"Consecutive wildcard characters at pos {i + 1}")
            pieces.append(bytes(current))
            current = bytearray()
        elif byte == 0x5C:  # backslash
            if i + 1 < len(raw) and raw[i + 1] in (0x2A, 0x5C):
                current.append(raw[i + 1])
                i += 1
            else:
                raise WildcardError(f"Invalid escape character at pos {i + 1}")
        else:
            current.append(byte)
        i += 1
    pieces.append(bytes(current))
    return tuple(piece.decode("utf-8", "surrogatepass") for piece in pieces)


def wildcard_matches(pieces: Sequence[str], value: str) -> bool:
    """Whether ``value`` matches the wildcard made of ``pieces`` (``*`` between consecutive pieces)."""
    if len(pieces) == 1:
        return value == pieces[0]
    first, last = pieces[0], pieces[-1]
    end = len(value) - len(last)
    if end < len(first) or not value.startswith(first) or not value.endswith(last):
        return False
    pos = len(first)
    for piece in pieces[1:-1]:
        if piece:
            found = value.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
    return True


def wildcard_complexity(values: Sequence[Sequence[str]], limit: int = MAX_WILDCARD_COMPLEXITY) -> int:
    """event-ruler's wildcard complexity of the wildcards on one field (capped just above ``limit``).

    It is the largest number of wildcard-pattern prefixes that one input string can match at once,
    summed over the patterns (``MachineComplexityEvaluator``); computed on the subset automaton.
    """
    automata = [_tokens(pieces) for pieces in dict.fromkeys(tuple(v) for v in values)]
    alphabet = {tok for tokens in automata for tok in tokens if tok is not None} | {"\x00"}
    start = tuple(_closure(tokens, {0}) for tokens in automata)
    seen = {start}
    todo = [start]
    worst = 0
    while todo:
        state = todo.pop()
        worst = max(worst, sum(len(active) - (0 in active) for active in state))
        if worst > limit or len(seen) > _MAX_COMPLEXITY_STATES:
            return limit + 1
        for ch in alphabet:
            following = tuple(_step(tokens, active, ch) for tokens, active in zip(automata, state, strict=True))
            if any(following) and following not in seen:
                seen.add(following)
                todo.append(following)
    return worst


def _tokens(pieces: Sequence[str]) -> tuple[str | None, ...]:
    """The wildcard as a token list: one character per literal, ``None`` per ``*``."""
    tokens: list[str | None] = []
    for index, piece in enumerate(pieces):
        if index:
            tokens.append(None)
        tokens.extend(piece)
    return tuple(tokens)


def _closure(tokens: Sequence[str | None], active: set[int]) -> frozenset[int]:
    todo = list(active)
    while todo:
        pos = todo.pop()
        if pos < len(tokens) and tokens[pos] is None and pos + 1 not in active:
            active.add(pos + 1)
            todo.append(pos + 1)
    return frozenset(active)


def _step(tokens: Sequence[str | None], active: frozenset[int], ch: str) -> frozenset[int]:
    following = set()
    for pos in active:
        if pos < len(tokens) and tokens[pos] == ch:
            following.add(pos + 1)
        if pos and tokens[pos - 1] is None:
            following.add(pos)
    return _closure(tokens, following)
