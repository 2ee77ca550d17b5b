"""YAML (and JSON) loading that remembers where every value came from.

PyYAML's composer gives nodes with start marks; we walk the node tree ourselves to build plain
Python data *and* a map from document path (a tuple of keys and indexes) to (line, column), so
that any later check -- a JSON-Schema error, a dangling reference, a bad fixture row -- can point
at the exact line of the file. Duplicate mapping keys, which PyYAML silently overwrites, are
reported here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from engine.errors import Problem

Path = tuple
#: libyaml's C parser when available (about 10x faster); both give nodes with line marks
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Document:
    file: str
    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path) -> tuple[int | None, int | None]:
        """Line and column of the deepest known prefix of ``path`` (1-based)."""
        path = tuple(path)
        while True:
            if path in self.positions:
                return self.positions[path]
            if not path:
                return (None, None)
            path = path[:-1]

    def problem(self, message: str, path=(), code: str = "schema") -> Problem:
        line, col = self.locate(path)
        return Problem(message, file=self.file, line=line, column=col,
                       path="/".join(str(p) for p in path) or None, code=code)


class _Walker:
    def __init__(self, file: str):
        self.file = file
        self.positions: dict[Path, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")

    def walk(self, node: yaml.Node, path: Path) -> Any:
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            self._scalars.flatten_mapping(node)
            result: dict = {}
            for key_node, value_node in node.value:
                key = self.walk(key_node, path + ("<key>",))
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    self.problems.append(Problem("a mapping key must be a plain value", file=self.file,
                                                 line=key_node.start_mark.line + 1,
                                                 column=key_node.start_mark.column + 1, code="yaml"))
                    continue
                if key in result:
                    self.problems.append(Problem(f"duplicate key `{key}`", file=self.file,
                                                 line=key_node.start_mark.line + 1,
                                                 column=key_node.start_mark.column + 1,
                                                 path="/".join(str(p) for p in path + (key,)), code="duplicate_key"))
                result[key] = self.walk(value_node, path + (key,))
                # point a key's path at its key, which is where people look
                self.positions[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            self.positions.pop(path + ("<key>",), None)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalars.construct_object(node, deep=True)


def load(text: str | bytes, file: str) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML/JSON text. Returns the document (None when unparseable) and problems."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return None, [Problem(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=file, code="encoding")]
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = " ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        return None, [Problem(f"YAML syntax error: {msg}", file=file,
                              line=mark.line + 1 if mark else None,
                              column=mark.column + 1 if mark else None, code="yaml")]
    except yaml.YAMLError as exc:
        return None, [Problem(f"YAML error: {exc}", file=file, code="yaml")]
    if node is None:
        return Document(file, None), []
    walker = _Walker(file)
    try:
        data = walker.walk(node, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        return None, [Problem(f"YAML error: {exc.problem}", file=file,
                              line=mark.line + 1 if mark else None,
                              column=mark.column + 1 if mark else None, code="yaml")]
    return Document(file, data, walker.positions), walker.problems


def dump(data: Any) -> str:
    """Readable YAML for export: keys in definition order, unicode kept, no aliases."""
    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, _data):
            return True

    def _str(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    from decimal import Decimal
    _Dumper.add_representer(Decimal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v)))
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
