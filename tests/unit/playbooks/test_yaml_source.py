"""Playbook YAML loading: positions for every path, and hostile documents refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from clampdown.playbooks.yaml_source import MAX_FILE_BYTES, SourceError, load_yaml_file, load_yaml_text

DOC = """\
name: demo
steps:
  - action: notify.log
    params:
      message: hi
"""


def test_lines_of_paths() -> None:
    doc = load_yaml_text(DOC, "demo.yaml")
    assert doc.data == {"name": "demo", "steps": [{"action": "notify.log", "params": {"message": "hi"}}]}
    assert doc.line_of(("name",)) == 1
    assert doc.line_of(("steps", 0, "action")) == 3
    assert doc.line_of(("steps", 0, "params", "message")) == 5
    # A missing key points at its closest existing parent.
    assert doc.line_of(("steps", 0, "params", "nope")) == 4


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a: &x [1]\nb: *x\n", 2, "anchors and aliases are not allowed"),
        ("a: 1\nb: 2\na: 3\n", 3, "duplicate key (first defined on line 1)"),
        ("a:\n  - [1, 2\n", 3, "invalid YAML"),
        ("? [1]\n: 2\n", 1, "keys must be strings"),
        ("", 1, "the document is empty"),
        ("a: 1\n---\nb: 2\n", 2, "invalid YAML"),
        ("base: &b {x: 1}\nother:\n  <<: *b\n", 3, "anchors and aliases are not allowed"),
    ],
)
def test_hostile_or_broken_documents(text: str, line: int, reason: str) -> None:
    with pytest.raises(SourceError) as info:
        load_yaml_text(text, "p.yaml")
    assert info.value.line == line
    assert reason in str(info.value)
    assert str(info.value).startswith(f"p.yaml:{line}: ")


def test_billion_laughs_is_refused_without_expanding() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(SourceError, match="aliases are not allowed"):
        load_yaml_text(bomb, "bomb.yaml")


def test_deep_nesting_is_refused() -> None:
    deep = "a: " + "[" * 200 + "]" * 200 + "\n"
    with pytest.raises(SourceError, match="nested"):
        load_yaml_text(deep, "deep.yaml")


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("a: '" + "x" * (MAX_FILE_BYTES + 1) + "'\n")
    with pytest.raises(SourceError, match="larger than"):
        load_yaml_file(path)


def test_python_tags_are_not_constructed() -> None:
    with pytest.raises(SourceError, match="invalid YAML"):
        load_yaml_text("a: !!python/object/apply:os.system ['id']\n", "evil.yaml")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SourceError, match="not UTF-8"):
        load_yaml_file(path)
