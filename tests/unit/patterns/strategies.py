"""Hypothesis settings and generators of patterns and events over a small shared vocabulary.

The vocabulary is small on purpose so that random patterns and random events often meet: keys collide,
dotted keys and nesting spell the same fields (``a.b`` / ``a``+``b``, and keys with empty steps: ``""``,
``a.``, ``.b``), strings differ only by case, IPs are spelled two ways, numbers are equal as int and float,
and arrays of objects exercise array consistency. ``HYPOTHESIS_PROFILE=fuzz`` runs many more examples.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.conftest import hypothesis_profile

PROFILE = hypothesis_profile(200, fuzz_examples=20_000)

KEYS = ["a", "b", "c", "a.b", "b.c", "detail", "", "a.", ".b"]
STRINGS = [
    "", "x", "X", "xy", "xY", "yx", "init", "INIT-x", "post-init", "a*b", "a\\b", "*",
    "10.0.0.1", "10.0.0.255", "10.0.1.7", "2001:db8::1", "2001:0db8:0:0:0:0:0:1", "::ffff:a00:1",
    "ß", "SS", "ss", "İ", "i̇", "K", "k", "\u212a", "ǅ", "\U0001f680",
]  # fmt: skip
NUMBERS = [0, 1, -1, 1.0, 1.5, 3, 3.0, 100, 2**53 + 1, 1e16, -2.5]

strings = st.sampled_from(STRINGS) | st.text(alphabet="abxyXY*.\\:", max_size=5)
numbers = st.sampled_from(NUMBERS)
scalars = strings | numbers | st.sampled_from([True, False, None])

# --- events ---------------------------------------------------------------------------------------

events_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=12,
)
events = st.dictionaries(st.sampled_from(KEYS), events_values, max_size=4)

# --- valid patterns -------------------------------------------------------------------------------

_plain_text = st.text(alphabet="abxyXY.:-", max_size=4)
_wildcards = st.lists(_plain_text, min_size=1, max_size=3).map("*".join).filter(
    lambda w: "**" not in w
) | st.sampled_from(["a\\*b", "*\\\\*", "", "*", "x*"])
_cidrs = st.sampled_from(["10.0.0.0/24", "10.0.0.5/24", "0.0.0.0/0", "10.0.0.1/31", "2001:db8::/32", "::/0"])


@st.composite
def _numeric(draw: st.DrawFn) -> list[Any]:
    operator = draw(st.sampled_from(["=", "<", "<=", ">", ">=", "range"]))
    low = draw(numbers.filter(lambda n: abs(n) < 2**53))
    if operator != "range":
        return [operator, low]
    high = draw(numbers.filter(lambda n: abs(n) < 2**53 and n > low))
    return [draw(st.sampled_from([">", ">="])), low, draw(st.sampled_from(["<", "<="])), high]


def _non_empty(items: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(items, min_size=1, max_size=3)


_anything_but = st.one_of(
    strings,
    numbers.filter(lambda n: abs(n) < 2**53),
    _non_empty(strings),
    _non_empty(numbers.filter(lambda n: abs(n) < 2**53)),
    st.fixed_dictionaries({"prefix": strings.filter(bool) | _non_empty(strings.filter(bool))}),
    st.fixed_dictionaries({"suffix": strings.filter(bool) | _non_empty(strings.filter(bool))}),
    st.fixed_dictionaries({"equals-ignore-case": strings | _non_empty(strings)}),
    st.fixed_dictionaries({"wildcard": _wildcards | _non_empty(_wildcards)}),
)

clause_items = st.one_of(
    scalars,
    st.fixed_dictionaries({"prefix": strings | st.fixed_dictionaries({"equals-ignore-case": strings})}),
    st.fixed_dictionaries({"suffix": strings | st.fixed_dictionaries({"equals-ignore-case": strings})}),
    st.fixed_dictionaries({"equals-ignore-case": strings}),
    st.fixed_dictionaries({"wildcard": _wildcards}),
    st.fixed_dictionaries({"anything-but": _anything_but}),
    st.fixed_dictionaries({"numeric": _numeric()}),
    st.fixed_dictionaries({"exists": st.booleans()}),
    st.fixed_dictionaries({"cidr": _cidrs}),
)
clauses = _non_empty(clause_items)


def _objects(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    fields = st.dictionaries(st.sampled_from(KEYS), clauses | inner, min_size=1, max_size=3)
    with_or = st.builds(
        lambda f, alts: {**f, "$or": alts},
        st.dictionaries(st.sampled_from(KEYS), clauses, max_size=2),
        st.lists(inner, min_size=2, max_size=3),
    )
    return fields | with_or


patterns = st.recursive(st.dictionaries(st.sampled_from(KEYS), clauses, min_size=1, max_size=3), _objects, max_leaves=6)

# --- garbage --------------------------------------------------------------------------------------

_OPERATORS = [
    *("prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric", "exists", "cidr"),
    *("$or", "NUMERIC", "exactly", "=", "<", ">="),
]
_any_keys = st.sampled_from(KEYS + _OPERATORS) | st.text(max_size=3)
_weird_scalars = (
    scalars
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.text(max_size=8)
    | st.sampled_from(["<", "<=", "=", ">", "*", "**", "\\", "1.2.3.4/33", "a/b", "::/200", "/"])
)
garbage = st.recursive(
    _weird_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_any_keys, inner, max_size=3)
        | st.dictionaries(st.integers(), inner, min_size=1, max_size=1)
        | st.builds(tuple, st.lists(inner, max_size=2))
    ),
    max_leaves=15,
)
garbage_patterns = st.dictionaries(_any_keys, garbage, max_size=4) | garbage


# --- events built from a pattern, so that about half of them match -----------------------------


def _satisfying(item: Any) -> list[Any]:
    """Values that a clause item probably accepts (candidates, not guarantees)."""
    if not isinstance(item, dict):
        return [item, item.swapcase() if isinstance(item, str) else item]
    ((operator, arg),) = item.items()
    text = arg.get("equals-ignore-case", "") if isinstance(arg, dict) else arg
    if operator == "prefix":
        return [text + "x", text.upper() + "y"]
    if operator == "suffix":
        return ["x" + text, "Y" + text.lower()]
    if operator == "equals-ignore-case":
        return [arg.swapcase(), arg]
    if operator == "wildcard":
        return [arg.replace("\\*", "*").replace("\\\\", "\\").replace("*", "q")]
    if operator == "numeric":
        return [arg[1], arg[1] + 0.5, arg[-1] - 0.5, float(arg[1])]
    if operator == "cidr":
        return ["10.0.0.9", "2001:db8::9", "10.0.1.1"]
    return ["x", 0, None, "init"]  # exists, anything-but


@st.composite
def _event_for(draw: st.DrawFn, pattern: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {}
    _fill(draw, pattern, event)
    return _respell(draw, event)


def _respell(draw: st.DrawFn, value: Any) -> Any:
    """The same fields spelled another way, sometimes: ``{"a": {"b": 1}}`` <-> ``{"a.b": 1}``, or both."""
    if isinstance(value, list):
        return [_respell(draw, item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        item = _respell(draw, item)
        how = draw(st.integers(0, 5))
        if how == 0 and isinstance(item, dict) and item:  # hoist one inner key: {"a.b": ...}
            inner = draw(st.sampled_from(sorted(item)))
            out[f"{key}.{inner}"] = item.pop(inner)
            if item or draw(st.booleans()):
                out[key] = item
        elif how == 1 and "." in key:  # nest a dotted key: {"a": {"b": ...}}, unless the event has "a"
            head, tail = key.split(".", 1)
            if head in value or head in out:
                out[key] = item
            else:
                out[head] = {tail: item}
        else:
            out[key] = item
    return out


def _fill(draw: st.DrawFn, pattern: dict[str, Any], target: dict[str, Any]) -> None:
    for key, value in pattern.items():
        if key == "$or":
            for branch in draw(st.lists(st.sampled_from(value), min_size=1, max_size=2)):
                _fill(draw, branch, target)
        elif isinstance(value, dict):
            child = target.get(key) if isinstance(target.get(key), dict) else {}
            _fill(draw, value, child)
            target[key] = draw(st.sampled_from([child, child, [child], [child, {}], [{}, child]]))
        elif draw(st.integers(0, 9)) > 0:  # sometimes leave the field out
            candidates = [c for item in value for c in _satisfying(item)]
            leaf = draw(st.sampled_from(candidates)) if draw(st.integers(0, 4)) else draw(scalars)
            target[key] = draw(st.sampled_from([leaf, leaf, [leaf], [draw(scalars), leaf]]))


pattern_and_event = patterns.flatmap(
    lambda p: st.tuples(st.just(p), st.one_of(_event_for(p), _event_for(p), _event_for(p), events))
)
