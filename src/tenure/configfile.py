"""Config as code: YAML files read with the line of every key, so errors name file, line and field.

Health models and trigger files share this: :func:`document` parses a file and indexes the
1-based line of every dotted path (``components.usage.weight``, ``triggers[2].when``), refusing a
key given twice; :func:`locate` builds the error for a path at its line (or the closest enclosing
key's). Each kind of file raises its own subclass of :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar

import yaml

DOCUMENT = "(document)"


class ConfigError(ValueError):
    """A config file is wrong; ``str()`` is ``file:line: field: message``."""

    def __init__(self, file: str, line: int, field: str, message: str) -> None:
        super().__init__(file, line, field, message)
        self.file = file
        self.line = line
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


def document(
    text: str, origin: str, error: type[ConfigError] = ConfigError
) -> tuple[object, dict[str, int]]:
    """The parsed document and the 1-based line of every dotted path in it."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[str, int] = {}
        if node is not None:
            _index(node, "", lines, (origin, error), set())
        return (loader.construct_document(node) if node is not None else None), lines
    except yaml.YAMLError as err:
        raise _yaml_error(err, origin, error) from None
    finally:
        loader.dispose()


def locate(
    lines: dict[str, int], origin: str, path: str, message: str,
    error: type[ConfigError] = ConfigError,
) -> ConfigError:  # fmt: skip
    """The error for ``path``, at its line (or its closest enclosing key's)."""
    probe = path
    while probe and probe not in lines:
        probe = parent(probe)
    return error(origin, lines.get(probe, 1), path or DOCUMENT, message)


def _yaml_error(err: yaml.YAMLError, origin: str, error: type[ConfigError]) -> ConfigError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    if isinstance(err, yaml.MarkedYAMLError):
        problem = " ".join(str(p) for p in (err.context, err.problem) if p)
    else:
        problem = str(err)
    return error(origin, line, "(yaml)", f"not valid YAML: {problem}")


def _index(
    node: yaml.Node, path: str, lines: dict[str, int], where: tuple[str, type[ConfigError]],
    open_: set[int],
) -> None:  # fmt: skip
    """Record the line of every key and list item under ``node``; refuse a key given twice."""
    origin, error = where
    if id(node) in open_:
        line = node.start_mark.line + 1
        raise error(origin, line, path or DOCUMENT, "an alias refers to its own anchor")
    open_.add(id(node))
    for child, line, value in _children(node, path):
        if isinstance(node, yaml.MappingNode) and child in lines:
            first = lines[child]
            raise error(origin, line, child, f"given twice (first on line {first})")
        lines[child] = line
        _index(value, child, lines, where, open_)
    open_.discard(id(node))


def _children(node: yaml.Node, path: str) -> list[tuple[str, int, yaml.Node]]:
    """(dotted path, line, node) of each key's value or list item directly under ``node``."""
    if isinstance(node, yaml.MappingNode):
        return [(join(path, str(k.value)), k.start_mark.line + 1, v) for k, v in node.value]
    if isinstance(node, yaml.SequenceNode):
        return [(f"{path}[{i}]", n.start_mark.line + 1, n) for i, n in enumerate(node.value)]
    return []


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def parent(path: str) -> str:
    return path[: max(path.rfind("."), path.rfind("["), 0)]


def suggest(word: str, choices: Iterable[str], listed: bool = True) -> str:
    """``; did you mean 'x'?``, else the choices (when ``listed``)."""
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known: {', '.join(options)}" if listed else ""


def kind_of(value: object) -> str:
    """How an error names a value that has the wrong type."""
    if value is None:
        return "nothing"
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"{type(value).__name__} {value!r}"


class Reader:
    """The base of each kind of file's reader: errors at the line of a path, and tables (mappings
    whose keys are known and whose required keys are there). Subclasses set ``error``."""

    error: ClassVar[type[ConfigError]] = ConfigError

    def __init__(self, origin: str, lines: dict[str, int]) -> None:
        self.origin, self.lines = origin, lines

    def fail(self, path: str, message: str) -> ConfigError:
        return locate(self.lines, self.origin, path, message, self.error)

    def table(
        self, value: object, path: str, known: Iterable[str], required: Iterable[str]
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"a mapping (key: value lines), got {kind_of(value)}")
        for key in value:
            if key not in known:
                raise self.fail(join(path, str(key)), f"unknown key{suggest(str(key), known)}")
        for key in required:
            if key not in value:
                raise self.fail(join(path, key), "required but missing")
        return value
