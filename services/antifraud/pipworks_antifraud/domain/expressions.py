"""The rule condition language: a tiny, typed expression grammar compiled to closures.

A condition reads like ``event.amount >= 9000 and count(deposit, 24h, amount >= 9000) >= 3``.
It is parsed by hand (no ``eval``), type-checked against a :class:`Schema` of the names a
rule may use, and compiled to Python closures. Grammar, loosest binding first::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum | "in" list)?
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | DURATION | STRING | "true" | "false" | name | call | "(" expr ")"
    name    := IDENT ("." IDENT)*
    call    := IDENT "(" [expr ("," expr)*] ")"
    list    := "[" [atom ("," atom)*] "]"

Numbers are decimals; a duration is a number with ``s``, ``m``, ``h`` or ``d`` (``24h``).
Division by zero yields zero so that ratios over empty windows stay quiet. Every problem
is reported as :class:`ExpressionError` with the offending name or position.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

NUM, STR, BOOL, DUR, MEASURE, ATTR = "number", "string", "boolean", "duration", "measure", "name"
MAX_SOURCE_LENGTH = 4000
MAX_DEPTH = 40
MAX_WINDOW_SECONDS = 180 * 86400
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ZERO = Decimal(0)

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<dur>\d+(?:\.\d+)?[smhd])(?![A-Za-z0-9_])
    | (?P<num>\d+(?:\.\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|\(|\)|\[|\]|,|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}


class ExpressionError(ValueError):
    """A condition that does not parse, names something unknown or mixes types."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int


def tokenize(source: str) -> list[Token]:
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(f"is longer than {MAX_SOURCE_LENGTH} characters")
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        if source[position:].strip() == "":
            break
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"unexpected character at position {position}")
        kind = match.lastgroup or ""
        text = match.group(kind)
        start = match.start(kind)
        if kind == "ident" and text in _KEYWORDS:
            kind = "kw"
        tokens.append(Token(kind, text, start))
        position = match.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


# -- syntax tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any
    type: str

    def render(self) -> str:
        if self.type == STR:
            return '"' + str(self.value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if self.type == BOOL:
            return "true" if self.value else "false"
        if self.type == DUR:
            return _render_duration(int(self.value))
        return str(self.value)


@dataclass(frozen=True)
class Name:
    path: str

    def render(self) -> str:
        return self.path


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node

    def render(self) -> str:
        return f"not {self.operand.render()}" if self.op == "not" else f"-{self.operand.render()}"


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node

    def render(self) -> str:
        return f"({self.left.render()} {self.op} {self.right.render()})"


@dataclass(frozen=True)
class ListLiteral:
    items: tuple[Literal, ...]

    def render(self) -> str:
        return "[" + ", ".join(item.render() for item in self.items) + "]"


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]

    def render(self) -> str:
        return f"{self.function}(" + ", ".join(a.render() for a in self.args) + ")"


Node = Literal | Name | Unary | Binary | ListLiteral | Call


def _render_duration(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.index = 0
        self.depth = 0

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise ExpressionError("is empty")
        node = self.expr()
        if self.peek().kind != "end":
            token = self.peek()
            raise ExpressionError(f"unexpected {token.text!r} at position {token.position}")
        return node

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token.kind in ("op", "kw") and token.text == text:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            token = self.peek()
            found = repr(token.text) if token.kind != "end" else "the end"
            raise ExpressionError(f"expected {text!r} at position {token.position}, found {found}")

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nests deeper than {MAX_DEPTH} levels")
        try:
            return self.or_()
        finally:
            self.depth -= 1

    def or_(self) -> Node:
        node = self.and_()
        while self.accept("or"):
            node = Binary("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.accept("and"):
            node = Binary("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.accept("not"):
            return Unary("not", self.not_())
        return self.compare()

    def compare(self) -> Node:
        node = self.sum()
        for op in ("==", "!=", "<=", ">=", "<", ">"):
            if self.accept(op):
                return Binary(op, node, self.sum())
        if self.accept("in"):
            return Binary("in", node, self.list_())
        return node

    def sum(self) -> Node:
        node = self.product()
        while True:
            if self.accept("+"):
                node = Binary("+", node, self.product())
            elif self.accept("-"):
                node = Binary("-", node, self.product())
            else:
                return node

    def product(self) -> Node:
        node = self.unary()
        while True:
            if self.accept("*"):
                node = Binary("*", node, self.unary())
            elif self.accept("/"):
                node = Binary("/", node, self.unary())
            else:
                return node

    def unary(self) -> Node:
        if self.accept("-"):
            return Unary("-", self.unary())
        return self.atom()

    def list_(self) -> ListLiteral:
        self.expect("[")
        items: list[Literal] = []
        if not self.accept("]"):
            while True:
                item = self.atom()
                if not isinstance(item, Literal):
                    raise ExpressionError("a list holds only literal values")
                items.append(item)
                if self.accept("]"):
                    break
                self.expect(",")
        return ListLiteral(tuple(items))

    def atom(self) -> Node:
        token = self.take()
        if token.kind == "num":
            return Literal(Decimal(token.text), NUM)
        if token.kind == "dur":
            amount = Decimal(token.text[:-1]) * UNITS[token.text[-1]]
            if amount != amount.to_integral_value():
                raise ExpressionError(f"duration {token.text} is not a whole number of seconds")
            return Literal(int(amount), DUR)
        if token.kind == "str":
            body = token.text[1:-1]
            return Literal(re.sub(r"\\(.)", r"\1", body), STR)
        if token.kind == "kw" and token.text in ("true", "false"):
            return Literal(token.text == "true", BOOL)
        if token.kind == "op" and token.text == "(":
            node = self.expr()
            self.expect(")")
            return node
        if token.kind == "ident":
            if self.accept("("):
                args: list[Node] = []
                if not self.accept(")"):
                    while True:
                        args.append(self.expr())
                        if self.accept(")"):
                            break
                        self.expect(",")
                return Call(token.text, tuple(args))
            parts = [token.text]
            while self.accept("."):
                part = self.take()
                if part.kind != "ident":
                    raise ExpressionError(f"expected a name after '.' at position {part.position}")
                parts.append(part.text)
            return Name(".".join(parts))
        found = repr(token.text) if token.kind != "end" else "the end"
        raise ExpressionError(f"unexpected {found} at position {token.position}")


def parse(source: str) -> Node:
    """The syntax tree of ``source``; :class:`ExpressionError` when it does not parse."""
    return _Parser(source).parse()


# -- what a condition may name ---------------------------------------------------------


@dataclass(frozen=True)
class AggregateRef:
    """A windowed aggregate a rule reads: the engine keeps one series per (measure, filter)."""

    function: str  # count | sum | distinct
    measure: str
    window_seconds: int
    filter_source: str  # canonical rendering of the filter, "" for none
    attribute: str = ""  # for distinct
    filter: Callable[[Mapping[str, Any]], bool] | None = field(
        default=None, compare=False, hash=False
    )

    @property
    def series_key(self) -> str:
        digest = hashlib.sha256(self.filter_source.encode()).hexdigest()[:12]
        key = f"{self.measure}|{digest if self.filter_source else ''}"
        return f"{key}|{self.attribute}" if self.function == "distinct" else key

    def render(self) -> str:
        parts = [self.measure]
        if self.attribute:
            parts.append(self.attribute)
        parts.append(_render_duration(self.window_seconds))
        if self.filter_source:
            parts.append(self.filter_source)
        return f"{self.function}({', '.join(parts)})"


class Scope(Protocol):
    """What a compiled condition reads at evaluation time."""

    def field(self, name: str) -> Any: ...

    def aggregate(self, ref: AggregateRef) -> Decimal: ...

    def baseline(self, function: str, metric: str) -> Decimal: ...


@dataclass(frozen=True)
class Schema:
    """The names a condition may use and their types."""

    fields: Mapping[str, str]  # "event.amount" -> NUM, "client.kyc_country" -> STR ...
    measures: Mapping[str, Mapping[str, str]]  # measure -> attribute types (for filters)
    baseline_metrics: frozenset[str]


Compiled = Callable[[Scope], Any]


@dataclass(frozen=True)
class Condition:
    """A checked, compiled condition with the aggregates and names it reads."""

    source: str
    evaluate: Compiled
    aggregates: tuple[AggregateRef, ...]
    leaves: tuple[tuple[str, Compiled], ...]  # rendered name -> getter, for explanations

    def explain(self, scope: Scope) -> dict[str, str]:
        """The value of every field and aggregate the condition reads, for an alert."""
        return {label: _show(getter(scope)) for label, getter in self.leaves}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _divide(a: Decimal, b: Decimal) -> Decimal:
    if b == 0:
        return ZERO
    try:
        return a / b
    except InvalidOperation:
        return ZERO


_ARITHMETIC: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
}


class _Compiler:
    def __init__(self, schema: Schema, names: Mapping[str, str], *, aggregates: bool) -> None:
        self.schema = schema
        self.names = names  # the names visible here (event fields, or a measure's attributes)
        self.allow_aggregates = aggregates
        self.aggregates: list[AggregateRef] = []
        self.leaves: dict[str, Compiled] = {}

    def compile(self, node: Node) -> tuple[Compiled, str]:
        if isinstance(node, Literal):
            value = node.value
            if node.type == DUR:
                raise ExpressionError(f"duration {node.render()} can only be an aggregate's window")
            return (lambda _s: value), node.type
        if isinstance(node, Name):
            kind = self.names.get(node.path)
            if kind is None:
                raise ExpressionError(f"unknown field {node.path!r}")
            path = node.path
            if self.allow_aggregates:
                getter: Compiled = lambda s: s.field(path)  # noqa: E731
                self.leaves[path] = getter
            else:
                getter = lambda attrs: attrs.get(path)  # type: ignore[attr-defined]  # noqa: E731
            return getter, kind
        if isinstance(node, Unary):
            operand, kind = self.compile(node.operand)
            if node.op == "not":
                self._need(kind, BOOL, "'not'")
                return (lambda s: not operand(s)), BOOL
            self._need(kind, NUM, "'-'")
            return (lambda s: -operand(s)), NUM
        if isinstance(node, Binary):
            return self._binary(node)
        if isinstance(node, Call):
            return self._call(node)
        raise ExpressionError("a list can only follow 'in'")

    def _need(self, kind: str, wanted: str, where: str) -> None:
        if kind != wanted:
            raise ExpressionError(f"{where} needs a {wanted}, not a {kind}")

    def _binary(self, node: Binary) -> tuple[Compiled, str]:
        op = node.op
        if op == "in":
            left, kind = self.compile(node.left)
            assert isinstance(node.right, ListLiteral)
            for item in node.right.items:
                if item.type != kind:
                    raise ExpressionError(
                        f"'in' compares a {kind} with a list holding a {item.type}"
                    )
            values = frozenset(item.value for item in node.right.items)
            return (lambda s: left(s) in values), BOOL
        left, left_kind = self.compile(node.left)
        right, right_kind = self.compile(node.right)
        if op in ("and", "or"):
            self._need(left_kind, BOOL, f"'{op}'")
            self._need(right_kind, BOOL, f"'{op}'")
            if op == "and":
                return (lambda s: bool(left(s)) and bool(right(s))), BOOL
            return (lambda s: bool(left(s)) or bool(right(s))), BOOL
        if op in _ARITHMETIC:
            self._need(left_kind, NUM, f"'{op}'")
            self._need(right_kind, NUM, f"'{op}'")
            fn = _ARITHMETIC[op]
            return (lambda s: fn(left(s), right(s))), NUM
        if left_kind != right_kind:
            raise ExpressionError(f"'{op}' compares a {left_kind} with a {right_kind}")
        if op not in ("==", "!=") and left_kind != NUM:
            raise ExpressionError(f"'{op}' needs numbers, not {left_kind}s")
        compare = _COMPARE[op]
        return (lambda s: compare(left(s), right(s))), BOOL

    def _call(self, node: Call) -> tuple[Compiled, str]:
        name, args = node.function, node.args
        if name in ("count", "sum", "distinct"):
            return self._aggregate(node)
        if name in ("baseline", "today", "median"):
            if not self.allow_aggregates:
                raise ExpressionError(f"{name}() cannot be used inside an aggregate's filter")
            if len(args) != 1 or not isinstance(args[0], Name):
                raise ExpressionError(f"{name}() takes one metric name")
            metric = args[0].path
            if metric not in self.schema.baseline_metrics:
                known = ", ".join(sorted(self.schema.baseline_metrics))
                raise ExpressionError(f"unknown baseline metric {metric!r} (known: {known})")
            getter: Compiled = lambda s: s.baseline(name, metric)  # noqa: E731
            self.leaves[node.render()] = getter
            return getter, NUM
        if name == "abs":
            (value,) = self._numbers(node, 1)
            return (lambda s: abs(value(s))), NUM
        if name in ("min", "max"):
            a, b = self._numbers(node, 2)
            pick = min if name == "min" else max
            return (lambda s: pick(a(s), b(s))), NUM
        if name == "limit_for":
            return self._limit_for(node)
        raise ExpressionError(f"unknown function {name!r}")

    def _numbers(self, node: Call, arity: int) -> list[Compiled]:
        if len(node.args) != arity:
            raise ExpressionError(f"{node.function}() takes {arity} argument(s)")
        compiled = []
        for arg in node.args:
            fn, kind = self.compile(arg)
            self._need(kind, NUM, f"{node.function}()")
            compiled.append(fn)
        return compiled

    def _limit_for(self, node: Call) -> tuple[Compiled, str]:
        if len(node.args) != 2 or not (
            isinstance(node.args[1], Literal) and node.args[1].type == STR
        ):
            raise ExpressionError('limit_for() takes a key and a table such as "USD=10000 *=9000"')
        key, kind = self.compile(node.args[0])
        self._need(kind, STR, "limit_for()")
        table: dict[str, Decimal] = {}
        for entry in str(node.args[1].value).split():
            code, sep, amount = entry.partition("=")
            try:
                table[code] = Decimal(amount)
            except InvalidOperation:
                raise ExpressionError(f"limit_for(): bad entry {entry!r}") from None
            if not sep or not code:
                raise ExpressionError(f"limit_for(): bad entry {entry!r}")
        if "*" not in table:
            raise ExpressionError('limit_for(): the table needs a default entry "*=<amount>"')
        default = table["*"]
        return (lambda s: table.get(key(s), default)), NUM

    def _aggregate(self, node: Call) -> tuple[Compiled, str]:
        if not self.allow_aggregates:
            raise ExpressionError("an aggregate's filter cannot hold another aggregate")
        name, args = node.function, list(node.args)
        if not args or not isinstance(args[0], Name) or args[0].path not in self.schema.measures:
            known = ", ".join(sorted(self.schema.measures))
            given = args[0].render() if args else "nothing"
            raise ExpressionError(f"{name}(): unknown measure {given} (known: {known})")
        measure = args.pop(0).path  # type: ignore[union-attr]
        attributes = self.schema.measures[measure]
        attribute = ""
        if name == "distinct":
            if not args or not isinstance(args[0], Name) or args[0].path not in attributes:
                raise ExpressionError(f"distinct(): unknown attribute of {measure}")
            attribute = args.pop(0).path  # type: ignore[union-attr]
        if not args or not isinstance(args[0], Literal) or args[0].type != DUR:
            raise ExpressionError(f"{name}(): the window must be a duration such as 24h")
        window = args.pop(0)
        seconds = int(window.value) if isinstance(window, Literal) else 0
        if seconds <= 0:
            raise ExpressionError(f"{name}(): the window must be greater than zero")
        if seconds > MAX_WINDOW_SECONDS:
            raise ExpressionError(f"{name}(): the window must be at most 180d")
        filter_fn = None
        filter_source = ""
        if args:
            inner = _Compiler(self.schema, attributes, aggregates=False)
            filter_fn, kind = inner.compile(args.pop(0))
            if kind != BOOL:
                raise ExpressionError(f"{name}(): the filter must be a condition")
            filter_source = node.args[-1].render()
        if args:
            raise ExpressionError(f"{name}(): too many arguments")
        ref = AggregateRef(name, measure, seconds, filter_source, attribute, filter_fn)
        self.aggregates.append(ref)
        getter: Compiled = lambda s: s.aggregate(ref)  # noqa: E731
        self.leaves[ref.render()] = getter
        return getter, NUM


def compile_condition(source: str, schema: Schema) -> Condition:
    """Parse, check and compile ``source``; :class:`ExpressionError` says what is wrong."""
    tree = parse(source)
    compiler = _Compiler(schema, schema.fields, aggregates=True)
    evaluate, kind = compiler.compile(tree)
    if kind != BOOL:
        raise ExpressionError(f"must be a condition (true/false), not a {kind}")
    return Condition(
        source=source,
        evaluate=evaluate,
        aggregates=tuple(compiler.aggregates),
        leaves=tuple(compiler.leaves.items()),
    )
