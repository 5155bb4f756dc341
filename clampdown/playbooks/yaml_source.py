"""Safe YAML loading that remembers where every value came from.

Playbooks are written by people and reviewed as code, so errors must point at a file and line.
The loader is also hardened: aliases/anchors (billion-laughs), duplicate keys (a later key
silently winning hides a mistake), non-string keys, very deep nesting and huge files are
errors rather than surprises.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 40

DocPath = tuple[str | int, ...]
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class SourceError(ValueError):
    """A document that cannot be loaded; carries the file and line."""

    def __init__(self, file: str, line: int | None, path: DocPath, reason: str) -> None:
        self.file = file
        self.line = line
        self.path = path
        self.reason = reason
        super().__init__(format_location(file, line, path) + reason)


def format_path(path: DocPath) -> str:
    """``("steps", 0, "params")`` → ``steps[0].params``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def format_location(file: str, line: int | None, path: DocPath) -> str:
    where = f"{file}:{line}" if line else file
    return f"{where}: {format_path(path) + ': ' if path else ''}"


@dataclass(frozen=True)
class SourceDocument:
    """A loaded document and the line of each path inside it."""

    file: str
    data: Any
    lines: dict[DocPath, int]

    def line_of(self, path: DocPath) -> int | None:
        """Line of the deepest known prefix of ``path`` (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def error(self, path: DocPath, reason: str) -> SourceError:
        return SourceError(self.file, self.line_of(path), path, reason)


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(None, None, "anchors and aliases are not allowed in playbooks", event.start_mark)
        return super().compose_node(parent, index)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.lines: dict[DocPath, int] = {}

    def build(self, node: Node, path: DocPath) -> Any:
        if len(path) > MAX_DEPTH:
            raise SourceError(self.file, node.start_mark.line + 1, path, f"nested deeper than {MAX_DEPTH}")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if not isinstance(node, ScalarNode) and node.tag not in _PLAIN_TAGS:
            raise SourceError(self.file, node.start_mark.line + 1, path, f"invalid YAML: unsupported tag {node.tag}")
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise SourceError(self.file, key_node.start_mark.line + 1, path, "merge keys (<<) are not allowed")
                key = self.loader.construct_object(key_node) if isinstance(key_node, ScalarNode) else None
                if not isinstance(key, str):
                    raise SourceError(
                        self.file, key_node.start_mark.line + 1, path, f"keys must be strings, got {key!r}"
                    )
                if key in out:
                    raise SourceError(
                        self.file,
                        key_node.start_mark.line + 1,
                        (*path, key),
                        f"duplicate key (first defined on line {self.lines[(*path, key)]})",
                    )
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self.loader.construct_object(node)
        if not isinstance(value, str | int | float | bool | type(None)):
            # Timestamps, binary... are not part of the playbook language; keep the text.
            return str(node.value)
        return value


def load_yaml_text(text: str, file: str = "<string>") -> SourceDocument:
    """Load one YAML document from text, recording the line of every path."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise SourceError(file, None, (), f"file is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        loader = _NoAliasLoader(text)  # reads the whole text: a character YAML forbids fails here
    except yaml.reader.ReaderError as exc:
        at = text.count("\n", 0, exc.position) + 1
        raise SourceError(file, at, (), f"invalid YAML: {exc.reason} (character #x{exc.character:04x})") from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise SourceError(file, 1, (), "the document is empty")
        builder = _Builder(loader, file)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
        raise SourceError(file, line, (), f"invalid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise SourceError(file, None, (), f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SourceError(file, None, (), "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return SourceDocument(file=file, data=data, lines=builder.lines)


def load_yaml_file(path: Path, display: str | None = None) -> SourceDocument:
    name = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SourceError(name, None, (), f"file is larger than {MAX_FILE_BYTES // 1024} KiB")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(name, None, (), f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise SourceError(name, None, (), f"cannot read: {exc.strerror or exc}") from None
    return load_yaml_text(text, name)
