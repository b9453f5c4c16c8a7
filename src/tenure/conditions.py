"""Conditions over signals: a small language, parsed (never evaluated as code), two evaluators.

    usage_trend_14d <= -0.3 and (open_tickets_p1 > 0 or nps_latest <= 6)
    days_to_renewal <= 90 and segment = 'enterprise' and month in [11, 12]
    not (csat_90d is missing) and detractor = 1

Names are checked against a vocabulary (the signal catalog, plus whatever the caller adds:
calendar terms, health fields, attributes); an unknown name, a bad token or a missing operand is a
:class:`ConditionError` that points at the token. A missing value (None, NaN) makes every
comparison false, as in SQL; ``is missing`` and ``is not missing`` test for it. A condition
evaluates one row (a mapping) or a whole DataFrame at once; both give the same answers (tested).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tenure.configfile import suggest

_TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<string>'[^']*'|\"[^\"]*\")"
    r"|(?P<op><=|>=|!=|==|<|>|=)|(?P<punct>[()\[\],])|(?P<name>[A-Za-z_][A-Za-z0-9_.]*))"
)
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "=": operator.eq, "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
KEYWORDS = {"and", "or", "not", "in", "is", "missing", "true", "false"}
Value = float | str | bool


class ConditionError(ValueError):
    """A condition that cannot be read; ``str()`` shows the text with a caret under the token."""

    def __init__(self, text: str, position: int, message: str) -> None:
        super().__init__(text, position, message)
        self.text, self.position, self.message = text, position, message

    def __str__(self) -> str:
        return f"{self.message}\n  {self.text}\n  {' ' * self.position}^"


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, op, punct, name, end
    text: str
    position: int


def tokens(text: str) -> list[Token]:
    found, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            if text[at:].strip() == "":
                break
            start = at + len(text[at:]) - len(text[at:].lstrip())
            raise ConditionError(text, start, f"cannot read {text[start]!r} here")
        kind = next(k for k, v in match.groupdict().items() if v is not None)
        found.append(Token(kind, match.group(kind), match.start(kind)))
        at = match.end()
    found.append(Token("end", "", len(text)))
    return found


# The tree: each node evaluates a row and a frame -------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Compare:
    name: str
    op: str
    value: Value

    def row(self, values: Mapping[str, Any]) -> bool:
        got = values.get(self.name)
        if _missing(got):
            return False
        try:
            return bool(_OPS[self.op](got, self.value))
        except TypeError:  # a text compared with a number: not true
            return False

    def frame(self, data: pd.DataFrame) -> np.ndarray:
        column = data[self.name]
        present = column.notna().to_numpy()
        if isinstance(self.value, str) and self.op not in ("=", "==", "!="):
            raise TypeError(f"{self.name} {self.op} {self.value!r}: text can only be = or !=")
        compared = np.asarray(_OPS[self.op](column, self.value), dtype=bool)
        return np.asarray(present & compared, dtype=bool)


@dataclass(frozen=True)
class Within:
    name: str
    values: tuple[Value, ...]

    def row(self, values: Mapping[str, Any]) -> bool:
        got = values.get(self.name)
        return not _missing(got) and got in self.values

    def frame(self, data: pd.DataFrame) -> np.ndarray:
        return np.asarray(data[self.name].isin(self.values), dtype=bool)


@dataclass(frozen=True)
class Missing:
    name: str

    def row(self, values: Mapping[str, Any]) -> bool:
        return _missing(values.get(self.name))

    def frame(self, data: pd.DataFrame) -> np.ndarray:
        return np.asarray(data[self.name].isna(), dtype=bool)


@dataclass(frozen=True)
class Not:
    inner: Node

    def row(self, values: Mapping[str, Any]) -> bool:
        return not self.inner.row(values)

    def frame(self, data: pd.DataFrame) -> np.ndarray:
        return ~self.inner.frame(data)


@dataclass(frozen=True)
class Both:
    parts: tuple[Node, ...]
    any_: bool  # or (True) / and (False)

    def row(self, values: Mapping[str, Any]) -> bool:
        found = (p.row(values) for p in self.parts)
        return any(found) if self.any_ else all(found)

    def frame(self, data: pd.DataFrame) -> np.ndarray:
        masks = [p.frame(data) for p in self.parts]
        combine = np.logical_or if self.any_ else np.logical_and
        result = masks[0]
        for mask in masks[1:]:
            result = combine(result, mask)
        return result


Node = Compare | Within | Missing | Not | Both


@dataclass(frozen=True)
class Condition:
    """A parsed condition: its text, the names it reads, and its tree."""

    text: str
    names: tuple[str, ...]
    tree: Node

    def row(self, values: Mapping[str, Any]) -> bool:
        return self.tree.row(values)

    def frame(self, data: pd.DataFrame) -> np.ndarray:
        """One boolean per row of ``data`` (which must hold every name the condition reads)."""
        return self.tree.frame(data)


def parse(text: str, vocabulary: Iterable[str], text_names: Iterable[str] = ()) -> Condition:
    """Parse ``text`` against the names in ``vocabulary`` (those in ``text_names`` hold text and
    compare with ``=``, ``!=`` and ``in`` only; the others hold numbers); ConditionError points at
    the problem."""
    parser = _Parser(text, tokens(text), frozenset(vocabulary), frozenset(text_names))
    tree = parser.expression()
    parser.expect_end()
    return Condition(text, tuple(dict.fromkeys(parser.names)), tree)


class _Parser:
    """Recursive descent: or binds loosest, then and, then not, then one comparison."""

    def __init__(
        self, text: str, found: Sequence[Token], vocabulary: frozenset[str],
        text_names: frozenset[str] = frozenset(),
    ) -> None:  # fmt: skip
        self.text, self.tokens, self.vocabulary = text, list(found), vocabulary
        self.text_names = text_names
        self.at = 0
        self.names: list[str] = []

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def word(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "name" and token.text.lower() == word:
            self.at += 1
            return True
        return False

    def fail(self, token: Token, message: str) -> ConditionError:
        return ConditionError(self.text, token.position, message)

    def expression(self) -> Node:
        parts = [self.conjunction()]
        while self.word("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Both(tuple(parts), any_=True)

    def conjunction(self) -> Node:
        parts = [self.negation()]
        while self.word("and"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else Both(tuple(parts), any_=False)

    def negation(self) -> Node:
        if self.word("not"):
            return Not(self.negation())
        if self.peek().text == "(":
            self.take()
            inner = self.expression()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Node:
        name = self.name()
        token = self.take()
        if token.kind == "op":
            value_at = self.peek()
            value = self.value()
            self.check_type(name, value, value_at, token.text)
            return Compare(name, token.text, value)
        if token.kind == "name" and token.text.lower() == "in":
            value_at = self.peek()
            values = self.values()
            for value in values:
                self.check_type(name, value, value_at, "=")
            return Within(name, values)
        if token.kind == "name" and token.text.lower() == "is":
            negate = self.word("not")
            if not self.word("missing"):
                raise self.fail(self.peek(), "expected 'missing' after 'is'")
            return Not(Missing(name)) if negate else Missing(name)
        raise self.fail(token, f"expected a comparison after {name} (<, <=, =, !=, >=, >, in, is)")

    def check_type(self, name: str, value: Value, at: Token, op: str) -> None:
        """Text names take 'text' with =, != or in; number names take numbers (or true/false)."""
        if name in self.text_names:
            if not isinstance(value, str):
                raise self.fail(at, f"{name} holds text: compare it with 'quoted text'")
            if op not in ("=", "==", "!="):
                raise self.fail(at, f"{name} holds text: use =, != or in, not {op}")
        elif isinstance(value, str):
            raise self.fail(at, f"{name} holds a number, not text")

    def name(self) -> str:
        token = self.take()
        if token.kind != "name" or token.text.lower() in KEYWORDS:
            raise self.fail(
                token, "expected a signal name" + (f", got {token.text!r}" if token.text else "")
            )
        if token.text not in self.vocabulary:
            hint = suggest(token.text, sorted(self.vocabulary), listed=False)
            raise self.fail(token, f"unknown name {token.text!r}{hint}")
        self.names.append(token.text)
        return token.text

    def value(self) -> Value:
        token = self.take()
        if token.kind == "number":
            return float(token.text)
        if token.kind == "string":
            return token.text[1:-1]
        if token.kind == "name" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        raise self.fail(token, "expected a number, 'text', true or false")

    def values(self) -> tuple[Value, ...]:
        self.expect("[")
        found = [self.value()]
        while self.peek().text == ",":
            self.take()
            found.append(self.value())
        self.expect("]")
        return tuple(found)

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise self.fail(
                token, f"expected {text!r}" + (f", got {token.text!r}" if token.text else "")
            )

    def expect_end(self) -> None:
        token = self.peek()
        if token.kind != "end":
            raise self.fail(token, f"expected 'and', 'or' or the end, got {token.text!r}")
