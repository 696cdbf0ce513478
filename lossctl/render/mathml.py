"""A derivation step's formula, typeset as MathML.

The kernels write each step's formula once, as readable Unicode text
(``−[y·log p + (1−y)·log(1−p)]``, ``(1 − p_t)^γ``, ``clamp(p, 1e-07, 1)``); the
terminal shows that text and a page shows this module's MathML of it. The
grammar is the small one the formulas use:

* numbers become ``<mn>``; one-letter names (Latin or Greek) ``<mi>`` in italics;
* known function names (``log``, ``softmax``, ``max``, ...) upright ``<mi>``;
* other words (``with``, ``mean``, ``torch's``) are prose: ``<mtext>``;
* ``a_b`` and ``a^b`` are ``<msub>``/``<msup>``, with ``b`` one token or a
  parenthesised group (whose brackets are dropped, as in TeX's braces);
* every other character is an operator ``<mo>``.

Each ``<math>`` carries the original text as an ``<annotation>``, so a reader
(or a screen reader) that cannot render MathML still has the formula.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET

MATHML_NS = "http://www.w3.org/1998/Math/MathML"

# Multi-letter names that are mathematics, not prose: set upright as identifiers.
FUNCTIONS = frozenset({
    "log", "exp", "ln", "max", "min", "argmax", "argmin", "softmax", "log_softmax", "logsumexp", "lse",
    "softplus", "sigmoid", "clamp", "clip", "sum", "abs", "sqrt", "tanh", "cos", "cosh", "sin", "sign",
    "dist", "norm", "sim", "nll", "ce", "CE", "RCE", "KL", "BCE", "pw", "eps", "log1p", "expm1", "xlogy",
    "lgamma", "erf", "var", "batchmean", "sparsemax", "relu",
})

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>\d+(?:\.\d+)?(?:[eE][+\-−]?\d+)?)
      | (?P<word>[^\W\d_]+(?:'s)?)
      | (?P<sub>_)
      | (?P<sup>\^)
      | (?P<open>[(\[{])
      | (?P<close>[)\]}])
      | (?P<op>.)""",
    re.VERBOSE,
)

_LARGE_OPERATORS = {"Σ", "∑", "Π", "∏"}


def formula_element(text: str, display: str = "inline") -> ET.Element:
    """``<math>`` for one formula; its last child is the source text as an annotation."""
    math = ET.Element("math", {"xmlns": MATHML_NS, "display": display})
    semantics = ET.SubElement(math, "semantics")
    row = ET.SubElement(semantics, "mrow")
    for node in _parse(_tokens(text)):
        row.append(node)
    annotation = ET.SubElement(semantics, "annotation", {"encoding": "text/plain"})
    annotation.text = text
    return math


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(unicodedata.normalize("NFC", text)):
        kind = m.lastgroup
        if kind == "space":
            out.append(("space", m.group()))
        else:
            out.append((kind, m.group()))
    return out


def _parse(tokens: list[tuple[str, str]]) -> list[ET.Element]:
    """Elements for a token list; scripts bind to the element before them.

    MathML sets adjacent identifiers and text without space, so a space written
    between two non-operators (``log p``, ``l over 2 values``) becomes an ``<mspace>``.
    """
    nodes: list[ET.Element] = []
    spaced = False
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        if kind in ("sub", "sup") and nodes:
            script, i = _script(tokens, i + 1)
            if script is None:  # a trailing '_' or '^': show it as written
                nodes.append(_leaf("mo", value))
                continue
            base = nodes.pop()
            wrapper = ET.Element("msub" if kind == "sub" else "msup")
            wrapper.append(base)
            wrapper.append(script)
            nodes.append(wrapper)
            spaced = False
            continue
        if kind == "space":
            spaced = True
            i += 1
            continue
        atom = _atom(kind, value)
        if nodes and nodes[-1].tag == "mtext" and atom.tag == "mtext":
            nodes[-1].text = (nodes[-1].text or "") + (" " if spaced else "") + (atom.text or "")
        else:
            if spaced and nodes and nodes[-1].tag != "mo" and atom.tag != "mo":
                nodes.append(ET.Element("mspace", {"width": "0.3em"}))
            nodes.append(atom)
        spaced = False
        i += 1
    return nodes


def _script(tokens: list[tuple[str, str]], i: int) -> tuple[ET.Element | None, int]:
    """The script after ``_``/``^``: one token, or a bracketed group without its brackets."""
    if i >= len(tokens) or tokens[i][0] == "space":
        return None, i
    kind, value = tokens[i]
    if kind == "open":
        depth, j = 1, i + 1
        while j < len(tokens) and depth:
            depth += {"open": 1, "close": -1}.get(tokens[j][0], 0)
            j += 1
        inner = tokens[i + 1:j - 1] if depth == 0 else tokens[i + 1:j]
        row = ET.Element("mrow")
        for node in _parse(inner):
            row.append(node)
        return row, j
    if kind in ("sub", "sup", "close"):
        return None, i
    return _atom(kind, value), i + 1


def _atom(kind: str, value: str) -> ET.Element:
    if kind == "number":
        return _leaf("mn", value.replace("−", "-"))
    if kind == "word" and value not in _LARGE_OPERATORS:
        return _leaf(_word_tag(value), value, upright=len(value) > 1)
    if kind in ("open", "close"):
        return _leaf("mo", value, fence=True)
    node = _leaf("mo", value)
    if value in _LARGE_OPERATORS:
        node.set("largeop", "true")
    return node


def _word_tag(word: str) -> str:
    if len(word) == 1 or word in FUNCTIONS or (len(word) <= 3 and not word.isalpha()):
        return "mi"
    if len(word) == 2 and word[0].isalpha() and unicodedata.combining(word[1]):
        return "mi"  # a letter with a combining accent (ŷ written as y + ̂)
    return "mtext"


def _leaf(tag: str, text: str, *, upright: bool = False, fence: bool = False) -> ET.Element:
    node = ET.Element(tag)
    node.text = text
    if tag == "mi" and upright:
        node.set("mathvariant", "normal")
    if fence:
        node.set("stretchy", "false")
    return node
