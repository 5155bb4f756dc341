"""Validating a pattern and turning it into alternatives of field tests.

The checks and their order follow event-ruler's ``JsonRuleCompiler`` (what EventBridge runs), and the
reasons are its messages. ``$or`` is expanded the same way: the fields met so far are copied into each
branch, and a field met later is put into every branch, replacing a branch field of the same path.

Fields are dotted names (see ``fieldnames``): ``{"a.b": [1]}`` and ``{"a": {"b": [1]}}`` are the same field,
so when a pattern spells one field twice the clause met later in the document replaces the earlier one
(event-ruler's ``rule.put``). For JSON text with duplicate keys, objects under the same key are merged first
(see ``jsontext``), so "later" is the order of the normalized pattern, which is what gets installed as a rule.
Errors name the path as written in the pattern (``("detail", "a.b")``, ``("$or", 1, "b")`` inside an ``$or``);
field tests carry the field's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.patterns.errors import InvalidPattern, Location, Path
from chalicelib.patterns.fieldnames import field_key, follows_empty_keys, pattern_field_path
from chalicelib.patterns.jsontext import JsonObject
from chalicelib.patterns.matchers import (
    AnythingBut,
    AnythingButIgnoreCase,
    AnythingButPrefix,
    AnythingButSuffix,
    AnythingButWildcard,
    Cidr,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Matcher,
    Numeric,
    Prefix,
    PrefixIgnoreCase,
    Suffix,
    SuffixIgnoreCase,
    Wildcard,
)
from chalicelib.patterns.text import (
    MAX_WILDCARD_COMPLEXITY,
    TOO_COMPLEX,
    WildcardError,
    parse_wildcard,
    wildcard_complexity,
)
from chalicelib.patterns.values import FALSE, NULL, TRUE, comparable_number, looks_like_ip, parse_ip

#: Objects nested deeper than this are refused (a guard of ours; AWS's 2048-character rule limit
#: keeps real patterns far shallower).
MAX_DEPTH = 64
#: ``$or`` multiplies alternatives; refuse patterns that expand to more than this many.
MAX_ALTERNATIVES = 1024

#: Field names event-ruler refuses inside ``$or`` objects.
RESERVED_IN_OR = frozenset(
    {
        *("exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists", "wildcard"),
        *("numeric", "cidr", "=", "<", "<=", ">", ">=", "regex", "not-wildcard", "not-equals-ignore-case"),
        *("date-after", "date-on-or-after", "date-before", "date-on-or-before", "in-date-range"),
        *("ip-address-in-range", "ip-address-not-in-range"),
    }
)

_ONE_KEY = "Only one key allowed in match expression"
_TOO_MANY = "Too many elements in numeric expression"
_ABSENT = object()  # what {"exists": false} compiles to: not a value test


class FieldTest:
    """The clause on one field: its value matchers, and whether absence satisfies it.

    ``path`` is the field's dotted name split at dots; ``where`` is where the clause is written in the
    pattern (``("detail.type",)``, ``("$or", 1, "detail", "type")``); ``field`` is how the event walk finds it
    (set once the whole pattern is known, since whether an empty event key is followed depends on all its fields).
    """

    __slots__ = ("absent_ok", "clause", "field", "key", "matchers", "path", "ruler_key", "where")

    def __init__(
        self, path: Path, clause: list[Any], matchers: tuple[Matcher, ...], absent_ok: bool, where: Location = ()
    ) -> None:
        self.path = path
        self.where = where
        self.clause = clause
        self.matchers = matchers
        self.absent_ok = absent_ok
        self.key = (path, frozenset(m.key for m in matchers), absent_ok)
        self.ruler_key = ruler_order(path)
        self.field = field_key(path, True)  # see compile_alternatives

    def accepts(self, leaf: Any) -> bool:
        return any(m.test(leaf) for m in self.matchers)

    def __repr__(self) -> str:
        return f"FieldTest({self.path!r}, {self.clause!r})"


def ruler_order(path: Path) -> tuple[bytes, Path]:
    """event-ruler visits a rule's fields sorted by dotted name (Java string order, i.e. UTF-16 units)."""
    return ".".join(path).encode("utf-16-be", "surrogatepass"), path


Alternative = tuple[FieldTest, ...]


def compile_alternatives(pattern: Any) -> tuple[dict[str, Any], tuple[Alternative, ...]]:
    """Validate ``pattern`` (a parsed JSON object) and return its normalized copy and its alternatives.

    Each alternative is a conjunction of field tests sorted in event-ruler's field order; the pattern
    matches an event when one alternative does.
    """
    if not isinstance(pattern, Mapping):
        raise InvalidPattern((), "Filter is not an object")
    normalized, branches = _object(pattern, (), False, 0, [{}])
    alternatives = tuple(tuple(sorted(branch.values(), key=_by_ruler_key)) for branch in branches)
    _check_wildcard_complexity(alternatives)
    tests = [test for alternative in alternatives for test in alternative]
    if any("" in test.path for test in tests) and not follows_empty_keys(test.path for test in tests):
        for test in tests:
            test.field = field_key(test.path, False)  # the event walk skips empty keys for these fields
    return normalized, alternatives


def _by_ruler_key(test: FieldTest) -> tuple[bytes, Path]:
    return test.ruler_key


Branches = list[dict[Path, FieldTest]]


def _object(
    obj: Mapping[Any, Any], path: Location, in_or: bool, depth: int, branches: Branches
) -> tuple[dict[str, Any], Branches]:
    """``path`` is where ``obj`` is written (errors name it); fields drop its ``"$or", i`` steps."""
    if depth > MAX_DEPTH:
        raise InvalidPattern(path, f"Objects are nested more than {MAX_DEPTH} levels deep")
    if not obj:
        raise InvalidPattern(path, "Empty objects are not allowed")
    normalized: dict[str, Any] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise InvalidPattern(path, f"Field names must be strings, not {type(key).__name__}")
        keys = (*path, key)
        if key == "$or":
            normalized[key], branches = _or(value, path, depth, branches)
        elif in_or and key in RESERVED_IN_OR:
            raise InvalidPattern(keys, f"{key} is Ruler reserved fieldName which cannot be used inside $or.")
        elif isinstance(value, Mapping):
            normalized[key], branches = _object(value, keys, in_or, depth + 1, branches)
        elif isinstance(value, list | tuple):
            test = _field(value, keys)
            normalized[key] = test.clause
            for branch in branches:
                branch[test.path] = test  # replaces an earlier clause on the field, however it was spelled
        else:
            raise InvalidPattern(keys, f'"{key}" must be an object or an array')
    return normalized, branches


def _or(value: Any, path: Location, depth: int, branches: Branches) -> tuple[list[dict[str, Any]], Branches]:
    or_path = (*path, "$or")
    if not isinstance(value, list | tuple):
        raise InvalidPattern(or_path, "It must be an Array followed with $or.")
    normalized: list[dict[str, Any]] = []
    expanded: Branches = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise InvalidPattern((*or_path, index), "Only JSON object is allowed in array of $or relationship.")
        copies = [dict(branch) for branch in branches]
        item_normalized, item_branches = _object(item, (*or_path, index), True, depth + 1, copies)
        normalized.append(item_normalized)
        expanded.extend(item_branches)
        if len(expanded) > MAX_ALTERNATIVES:
            raise InvalidPattern(
                or_path, f"Rule is too complex - $or expands to more than {MAX_ALTERNATIVES} alternatives"
            )
    if len(value) < 2:
        raise InvalidPattern(or_path, "There must have at least 2 Objects in $or relationship.")
    return normalized, expanded


def _field_keys(path: Location) -> tuple[str, ...]:
    """The keys of the objects around a clause, without the ``"$or", i`` steps of its location."""
    return tuple(key for key in path if isinstance(key, str) and key != "$or")


def _field(values: list[Any] | tuple[Any, ...], path: Location) -> FieldTest:
    """The test of the clause written at ``path`` (which errors name)."""
    matchers: list[Matcher] = []
    clause: list[Any] = []
    absent_ok = False
    for value in values:
        if isinstance(value, Mapping):
            matcher, normalized = _expression(value, path)
            clause.append(normalized)
            if matcher is _ABSENT:
                absent_ok = True
            else:
                matchers.append(matcher)
        else:
            matchers.append(_exact(value, path))
            clause.append(value)
    if not clause:
        raise InvalidPattern(path, "Empty arrays are not allowed")
    unique = tuple({m.key: m for m in matchers}.values())
    return FieldTest(pattern_field_path(_field_keys(path)), clause, unique, absent_ok, path)


def _exact(value: Any, path: Location) -> Matcher:
    if isinstance(value, str):
        text = str.__str__(value)
        return Exact(text, parse_ip(text) if looks_like_ip(text) else None)
    if value is True or value is False:
        return Exact(TRUE if value else FALSE)
    if value is None:
        return Exact(NULL)
    if isinstance(value, int | float):
        if value != value:
            raise InvalidPattern(path, "NaN is not a JSON number")
        number = comparable_number(value)
        return Exact(value if number is None else number)
    raise InvalidPattern(path, "Match value must be String, number, true, false, or null")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparable(value: Any, path: Location) -> float:
    number = comparable_number(value)
    if number is None:
        raise InvalidPattern(path, f"Cannot compare number : {_token_text(value)}")
    return number


def _token_text(value: Any) -> str:
    """What Jackson's ``getText()`` shows for a JSON value in event-ruler's messages."""
    if isinstance(value, Mapping):
        return "{"
    if isinstance(value, list | tuple):
        return "["
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _expression(obj: Mapping[Any, Any], path: Location) -> tuple[Any, dict[str, Any]]:
    """Compile one ``{"operator": value}`` match expression; returns the matcher and its normalized form."""
    items = list(obj.items())
    if not items:
        raise InvalidPattern(path, "Match expression name not found")
    operator, value = items[0]
    extra = len(items) > 1 or (isinstance(obj, JsonObject) and obj.duplicated)
    compile_operator = _OPERATORS.get(operator) if isinstance(operator, str) else None
    if compile_operator is None:
        raise InvalidPattern(path, f"Unrecognized match type {operator}")
    matcher, normalized_value = compile_operator(value, path)
    if extra:
        raise InvalidPattern(path, _TOO_MANY if operator in ("numeric", "anything-but") else _ONE_KEY)
    return matcher, {operator: normalized_value}


def _prefix(value: Any, path: Location) -> tuple[Matcher, Any]:
    if isinstance(value, Mapping):
        text = _ignore_case_object(value, path, "Prefix", "prefix")
        return PrefixIgnoreCase(text), {"equals-ignore-case": text}
    if not isinstance(value, str):
        raise InvalidPattern(path, "prefix match pattern must be a string")
    return Prefix(value), value


def _suffix(value: Any, path: Location) -> tuple[Matcher, Any]:
    if isinstance(value, Mapping):
        text = _ignore_case_object(value, path, "Suffix", "suffix")
        return SuffixIgnoreCase(text), {"equals-ignore-case": text}
    if not isinstance(value, str):
        raise InvalidPattern(path, "suffix match pattern must be a string")
    return Suffix(value), value


def _ignore_case_object(obj: Mapping[Any, Any], path: Location, title: str, operator: str) -> str:
    items = list(obj.items())
    if not items:
        raise InvalidPattern(path, f"{title} expression name not found")
    inner, text = items[0]
    if inner != "equals-ignore-case":
        raise InvalidPattern(path, f"Unsupported {operator} pattern: {inner}")
    if not isinstance(text, str):
        raise InvalidPattern(path, "equals-ignore-case match pattern must be a string")
    if len(items) > 1 or (isinstance(obj, JsonObject) and obj.duplicated):
        raise InvalidPattern(path, _ONE_KEY)
    return text


def _equals_ignore_case(value: Any, path: Location) -> tuple[Matcher, Any]:
    if not isinstance(value, str):
        raise InvalidPattern(path, "equals-ignore-case match pattern must be a string")
    return EqualsIgnoreCase(value), value


def _wildcard(value: Any, path: Location) -> tuple[Matcher, Any]:
    if not isinstance(value, str):
        raise InvalidPattern(path, "wildcard match pattern must be a string")
    return Wildcard(_wildcard_pieces(value, path)), value


def _wildcard_pieces(text: str, path: Location) -> tuple[str, ...]:
    try:
        return parse_wildcard(text)
    except WildcardError as exc:
        raise InvalidPattern(path, str(exc)) from None


def _exists(value: Any, path: Location) -> tuple[Any, Any]:
    if value is True:
        return Exists(), True
    if value is False:
        return _ABSENT, False
    raise InvalidPattern(path, "exists match pattern must be either true or false.")


def _numeric(value: Any, path: Location) -> tuple[Matcher, Any]:
    if not isinstance(value, list | tuple):
        raise InvalidPattern(path, "Value of numeric must be an array.")
    terms = list(value)
    if not terms or not isinstance(terms[0], str):
        raise InvalidPattern(path, f"Invalid member in numeric match: {_token_text(terms[0]) if terms else ']'}")
    operator = terms[0]
    if operator not in ("=", "<", "<=", ">", ">="):
        raise InvalidPattern(path, f"Unrecognized numeric range operator: {operator}")
    if len(terms) < 2 or not _is_number(terms[1]):
        raise InvalidPattern(path, f"Value of {'equals' if operator == '=' else operator} must be numeric")
    if operator in (">", ">=") and len(terms) > 2:
        return _numeric_range(terms, path), terms
    if len(terms) > 2:
        raise InvalidPattern(path, _TOO_MANY)
    bound = _comparable(terms[1], path)
    if operator == "=":
        return Numeric(bound, False, bound, False), terms
    if operator in ("<", "<="):
        return Numeric(None, False, bound, operator == "<"), terms
    return Numeric(bound, operator == ">", None, False), terms


def _numeric_range(terms: list[Any], path: Location) -> Numeric:
    operator = terms[2]
    if not isinstance(operator, str):
        raise InvalidPattern(path, f"Bad value in numeric range: {_token_text(operator)}")
    if operator not in ("<", "<="):
        raise InvalidPattern(path, f"Bad numeric range operator: {operator}")
    if len(terms) < 4 or not _is_number(terms[3]):
        raise InvalidPattern(path, f"Value of {operator} must be numeric")
    if len(terms) > 4:
        raise InvalidPattern(path, "Too many terms in numeric range expression")
    low, high = _comparable(terms[1], path), _comparable(terms[3], path)
    if not low < high:
        raise InvalidPattern(path, "Bottom must be less than top")
    return Numeric(low, terms[0] == ">", high, operator == "<")


def _cidr(value: Any, path: Location) -> tuple[Matcher, Any]:
    if not isinstance(value, str):
        raise InvalidPattern(path, "prefix match pattern must be a string")  # event-ruler's wording
    return Cidr(parse_cidr(value, path)), value


def parse_cidr(text: str, path: Location = ()) -> Any:
    """The network of a CIDR as event-ruler accepts it (host bits are simply masked off)."""
    parts = text.split("/") if text else [""]
    while len(parts) > 1 and parts[-1] == "":  # Java's String.split drops trailing empty strings
        parts.pop()
    if len(parts) != 2:
        raise InvalidPattern(path, "Malformed CIDR, one '/' required")
    address, mask_text = parts
    mask = _java_int(mask_text)
    if mask is None:
        raise InvalidPattern(path, "Malformed CIDR, mask bits must be an integer")
    if mask < 0:
        raise InvalidPattern(path, "Malformed CIDR, mask bits must not be negative")
    if not looks_like_ip(address):
        raise InvalidPattern(path, f"Nonstandard IP address: {address}")
    ip = parse_ip(address)
    if ip is None:
        raise InvalidPattern(path, f"Invalid IP address: {address}")
    if ip.version == 4 and mask > 31:
        raise InvalidPattern(path, "IPv4 mask bits must be < 32")
    if ip.version == 6 and mask > 127:
        raise InvalidPattern(path, "IPv6 mask bits must be < 128")
    import ipaddress

    return ipaddress.ip_network((ip, mask), strict=False)


def _java_int(text: str) -> int | None:
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all("0" <= ch <= "9" for ch in digits):
        return None
    number = int(text)
    return number if -(2**31) <= number < 2**31 else None


_AB_SET_KINDS = ("equals-ignore-case", "prefix", "suffix", "wildcard")
_AB_BAD_MEMBER = {
    "equals-ignore-case": ("Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."),
    "prefix": "prefix/suffix match pattern must be a string",
    "suffix": "prefix/suffix match pattern must be a string",
    "wildcard": "wildcard match pattern must be a string",
}
_AB_VALUE = "Value of anything-but must be an array or single string/number value."


def _anything_but(value: Any, path: Location) -> tuple[Matcher, Any]:
    if isinstance(value, Mapping):
        items = list(value.items())
        if not items:
            raise InvalidPattern(path, "Anything-but expression name not found")
        kind, inner = items[0]
        if kind not in _AB_SET_KINDS:
            raise InvalidPattern(path, f"Unsupported anything-but pattern: {kind}")
        if not (isinstance(inner, str | list | tuple) or _is_number(inner)):
            raise InvalidPattern(path, _AB_VALUE)
        matcher = _anything_but_set(kind, list(inner) if isinstance(inner, list | tuple) else [inner], path)
        if len(items) > 1 or (isinstance(value, JsonObject) and value.duplicated):
            raise InvalidPattern(path, _TOO_MANY)
        return matcher, {kind: list(inner) if isinstance(inner, list | tuple) else inner}
    if isinstance(value, list | tuple):
        members = list(value)
        strings: list[str] = []
        numbers: list[float] = []
        for member in members:
            if isinstance(member, str):
                strings.append(member)
            elif _is_number(member):
                numbers.append(_comparable(member, path))
            else:
                raise InvalidPattern(path, "Inside anything but list, start|null|boolean is not supported.")
        if bool(strings) == bool(numbers):
            raise InvalidPattern(
                path,
                "Inside anything but list, either all values are number or string, mixed type is not supported",
            )
        return AnythingBut(frozenset(strings), frozenset(numbers)), members
    if isinstance(value, str):
        return AnythingBut(frozenset([value]), frozenset()), value
    if _is_number(value):
        return AnythingBut(frozenset(), frozenset([_comparable(value, path)])), value
    raise InvalidPattern(path, _AB_VALUE)


def _anything_but_set(kind: str, members: list[Any], path: Location) -> Matcher:
    for member in members:
        if not isinstance(member, str):
            raise InvalidPattern(path, _AB_BAD_MEMBER[kind])
        if kind in ("prefix", "suffix") and not member:
            raise InvalidPattern(path, "Null prefix/suffix not allowed")
    texts = frozenset(members)
    if kind == "equals-ignore-case":
        return AnythingButIgnoreCase(texts)
    if kind == "prefix":
        return AnythingButPrefix(texts)
    if kind == "suffix":
        return AnythingButSuffix(texts)
    return AnythingButWildcard(frozenset(_wildcard_pieces(m, path) for m in members))


_OPERATORS = {
    "prefix": _prefix,
    "suffix": _suffix,
    "equals-ignore-case": _equals_ignore_case,
    "wildcard": _wildcard,
    "anything-but": _anything_but,
    "exists": _exists,
    "numeric": _numeric,
    "cidr": _cidr,
}


def _check_wildcard_complexity(alternatives: tuple[Alternative, ...]) -> None:
    by_path: dict[Path, set[tuple[str, ...]]] = {}
    for alternative in alternatives:
        for test in alternative:
            for matcher in test.matchers:
                if isinstance(matcher, Wildcard):
                    by_path.setdefault(test.path, set()).add(matcher.pieces)
                elif isinstance(matcher, AnythingButWildcard):
                    by_path.setdefault(test.path, set()).update(matcher.wildcards)
    for path, wildcards in by_path.items():
        if wildcard_complexity(sorted(wildcards)) > MAX_WILDCARD_COMPLEXITY:
            raise InvalidPattern(path, TOO_COMPLEX)
