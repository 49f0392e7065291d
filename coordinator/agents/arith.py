"""Arithmetic helpers shared by the demo agents (stdlib only; imported from the script's folder)."""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_CANDIDATE = re.compile(r"[\d(][\d\s.+\-*/()×x]*[\d)]")


def find_expression(text: str) -> str | None:
    """The longest arithmetic expression in ``text`` with at least one operator, normalised."""
    best = None
    for match in _CANDIDATE.finditer(text):
        expr = match.group(0).replace("×", "*").replace("x", "*").strip()
        if re.search(r"[+\-*/]", expr) and (best is None or len(expr) > len(best)):
            try:
                evaluate(expr)
            except (ValueError, SyntaxError, ZeroDivisionError):
                continue
            best = expr
    return best


def evaluate(expr: str) -> Fraction:
    """Exact value of an arithmetic expression (+ - * / and parentheses only)."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            result: Fraction = _OPS[type(node.op)](walk(node.left), walk(node.right))
            return result
        raise ValueError("not plain arithmetic")

    return walk(ast.parse(expr, mode="eval"))


def show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def check_by_parts(expr: str) -> str | None:
    """An independent check of ``a * b`` (whole numbers): split b into tens and units."""
    match = re.fullmatch(r"\s*(\d+)\s*\*\s*(\d+)\s*", expr)
    if not match:
        return None
    a, b = int(match.group(1)), int(match.group(2))
    tens, units = b - b % 10, b % 10
    if not tens or not units:
        return None
    return f"{a} * {tens} = {a * tens}, {a} * {units} = {a * units}, {a * tens} + {a * units} = {a * b}"
