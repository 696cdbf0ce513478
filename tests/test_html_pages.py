"""Pages: structure and escaping for every loss, MathML typesetting, and rendering in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import lossctl
from lossctl.render import html as pages
from lossctl.render.mathml import formula_element

from browser import dump_dom, screenshot

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "torch"
DOCS_PAGES = Path(__file__).resolve().parents[1] / "docs" / "pages"
HOSTILE = ('<script>alert(1)</script>.npy', '"><img src=x onerror=alert(2)>', "x' onload='alert(3)",
           "</title><script>alert(4)</script>", "&amp;<!-- -->")


class Outline(HTMLParser):
    """Tags, attributes and text of a page, as a browser's tokenizer sees them."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.doctype = ""
        self.feed(text)

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def names(self) -> list[str]:
        return [t for t, _ in self.tags]

    def all_text(self) -> str:
        return "".join(self.text)


def assert_self_contained(text: str) -> Outline:
    """Doctype, lang, title, table headers, no script, nothing fetched from anywhere."""
    page = Outline(text)
    assert page.doctype.lower() == "doctype html"
    assert ("html", {"lang": "en"}) in page.tags
    assert "title" in page.names() and "th" in page.names()
    assert "script" not in page.names()
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("src", "href", "action", "srcset", "poster", "data"):
                raise AssertionError(f"<{tag} {name}={value!r}> would load something")
    # The only URLs are XML namespace names, which browsers never fetch.
    urls = set(re.findall(r"https?://[^\s\"'<>]+", text))
    assert urls <= {"http://www.w3.org/1998/Math/MathML", "http://www.w3.org/2000/svg"}, urls
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]
    return page


def seed_page(**extra) -> tuple[str, object]:
    result = lossctl.compute({"loss": "ce", "logits": [[10, 0, -10], [8, 8, 8]], "target": [0, 2]},
                             explain=True, grad=True)
    spec = lossctl.registry().get("ce")
    values = np.asarray(result.per_sample).ravel()
    counts, edges = np.histogram(values, bins=8)
    order = np.argsort(-values, kind="stable")
    info = pages.LossPage(
        "ce", spec.mirrors, spec.summary, spec.formula,
        sources=[pages.SourceInfo("logits", "[[10,0,-10],[8,8,8]]", (2, 3), "int64"),
                 pages.SourceInfo("target", "[0,2]", (2,), "int64")],
        parameters={"ignore_index": -100, "label_smoothing": 0.0},
        command="lossctl ce --logits '[[10,0,-10],[8,8,8]]' --target '[0,2]' --html ce.html",
        top=[(int(i), float(values[i])) for i in order[:2]], histogram=(edges.tolist(), counts.tolist()), **extra)
    return pages.loss_page(result, info), result


# --------------------------------------------------------------------------- MathML


@pytest.mark.parametrize("text, expected", [
    ("(1 − p_t)^γ", ["mo", "mn", "mo", "msub", "msup"]),
    ("clamp(p, 1e-07, 1)", ["mi", "mo", "mi", "mo", "mn", "mo", "mn", "mo"]),
    ("ŷ = argmax_c (first on ties)", ["mi", "mo", "msub", "mo", "mtext", "mo"]),
    ("Σ_(c≠y) w_c", ["msub", "mspace", "msub"]),
])
def test_formulas_become_mathml(text, expected):
    math = formula_element(text)
    row = math.find("semantics/mrow")
    assert [child.tag for child in row] == expected
    assert math.find("semantics/annotation").text == text


def test_scripts_take_a_bracketed_group_without_its_brackets():
    sub = formula_element("Σ_(c≠y) x").find("semantics/mrow/msub")
    assert [c.tag for c in sub] == ["mo", "mrow"]
    assert [c.text for c in sub[1]] == ["c", "≠", "y"]
    assert sub[0].get("largeop") == "true"


def _letters(text: str) -> list[str]:
    return sorted(c for c in text if c.isalnum())


@pytest.mark.parametrize("spec", lossctl.registry().specs, ids=lambda s: s.name)
def test_every_formula_typesets_without_losing_a_symbol(spec):
    """Every letter and digit of the loss's formula and of each derivation step's formula is on the page."""
    result = lossctl.compute(first_fixture_case(spec.name), explain=True)
    for text in [spec.formula] + [s.formula for s in result.steps or []]:
        math = formula_element(text)
        shown = "".join(node.text or "" for node in math.find("semantics/mrow").iter())
        assert _letters(shown) == _letters(text), text


# --------------------------------------------------------------------------- structure and escaping


def test_seed_page_holds_the_value_the_steps_and_the_reduction():
    text, result = seed_page()
    page = assert_self_contained(text)
    body = page.all_text()
    assert "0.5493288448141933" in body
    for step in result.steps:
        assert step.label in body
    assert body.count("divides the sum") == 1 and "2 values" in body
    assert "d(loss)/d(logits)" in body
    assert page.names().count("math") >= len(result.steps)
    assert "svg" in page.names() and "rect" in page.names()


@pytest.mark.parametrize("name", HOSTILE)
def test_text_from_inputs_is_only_ever_text(name):
    text, _ = seed_page()
    result = lossctl.compute({"loss": "ce", "logits": [[1.0, 2.0]], "target": [0]}, explain=True)
    info = pages.LossPage(name, name, name, "x", sources=[pages.SourceInfo(name, name, (1, 2), name)],
                          parameters={name: name}, command=name, top=[(name, 1.0)])
    text = pages.loss_page(result, info)
    page = assert_self_contained(text)
    assert [t for t in page.names() if t in ("img", "script", "iframe", "object", "embed")] == []
    assert name in page.all_text()
    check = pages.check_page(name, name, [pages.CaseRow(name, name, "fail", name, name, name, 3, name)], name)
    page = assert_self_contained(check)
    assert name in page.all_text() and "script" not in page.names() and "img" not in page.names()
    diff = pages.diff_page(name, name, [pages.DiffArray(name, "fail", [(name, name)], [(name, name, name, name)])],
                           name, only_a=[name])
    page = assert_self_contained(diff)
    assert name in page.all_text() and "script" not in page.names() and "img" not in page.names()


def first_fixture_case(name: str) -> dict:
    """The first committed torch case of a loss (of its home framework for a loss torch lacks),
    as ``lossctl.compute`` takes it."""
    spec = lossctl.registry().get(name)
    if spec.home != "torch":
        path = FIXTURES.parent / "frameworks" / spec.home / f"{name}.json"
        return {"loss": name, **json.loads(path.read_text(encoding="utf-8"))["cases"][0]["call"]}
    doc = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    case = doc["cases"][0]
    return {k: v for k, v in case.items() if k not in ("name", "expect") and not k.startswith("_")}


@pytest.mark.parametrize("spec", lossctl.registry().specs, ids=lambda s: s.name)
def test_every_loss_gets_a_page(spec):
    """A page for every registered loss: its value and every derivation step's label are on it."""
    case = first_fixture_case(spec.name)
    result = lossctl.compute(case, explain=True, grad=True)
    text = pages.loss_page(result, pages.LossPage(spec.name, spec.mirrors, spec.summary, spec.formula))
    page = assert_self_contained(text)
    body = page.all_text()
    for step in result.steps or []:
        assert step.label in body
    if result.reduction != "none":
        assert pages.fmt_float(result.loss) in body


def test_check_page_lists_failures_first_with_their_diff():
    rows = [pages.CaseRow("ok-1", "ce", "pass", "0.5", "0.5", "0", 3),
            pages.CaseRow("broken", "mse", "fail", "1.0", "1.5", "0.5", 9, "loss expected 1.0 actual 1.5"),
            pages.CaseRow("ok-2", "bce", "pass", "0.1", "0.1", "0", 15)]
    page = assert_self_contained(pages.check_page("suite.yaml", "/tmp/suite.yaml", rows, "2 passed, 1 failed"))
    body = page.all_text()
    assert body.index("broken") < body.index("ok-1") < body.index("ok-2")
    assert "loss expected 1.0 actual 1.5" in body and "suite.yaml:9" in body


# --------------------------------------------------------------------------- a real browser


def _nonblank(png: Path) -> None:
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG"
        gray = np.asarray(im.convert("L"), dtype=np.float64)
    assert gray.std() > 5, "the screenshot is blank"
    assert (gray < 128).mean() > 0.002, "the screenshot has no text"


def _write_page(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _keep_screenshot(png: Path, name: str) -> None:
    """``LOSSCTL_UPDATE_SCREENSHOTS=1`` copies the tests' screenshot into docs/pages/ for the README."""
    if os.environ.get("LOSSCTL_UPDATE_SCREENSHOTS") == "1":
        DOCS_PAGES.mkdir(parents=True, exist_ok=True)
        (DOCS_PAGES / name).write_bytes(png.read_bytes())


def test_seed_page_in_chromium(tmp_path):
    text, result = seed_page()
    page = _write_page(tmp_path, "seed.html", text)
    dom = dump_dom(page)
    assert "0.5493288448141933" in dom
    for step in result.steps:
        assert step.label in dom
    assert dom.count("<math") >= len(result.steps) and "<msub>" in dom
    png = screenshot(page, tmp_path / "seed.png")
    _nonblank(png)
    _keep_screenshot(png, "seed-ce.png")


def test_check_report_in_chromium(tmp_path):
    rows = [pages.CaseRow("seed-ce", "ce", "pass", "0.549329", "0.5493288448141933", "8.4e-07", 3),
            pages.CaseRow("bce-wrong", "bce", "fail", "0.5", "0.46204", "0.038", 11,
                          "loss expected 0.5 actual 0.4620419 abs 0.038 rel 0.076")]
    page = _write_page(tmp_path, "check.html", pages.check_page("ci.yaml", "examples/ci/ci.yaml", rows,
                                                                 "1 passed, 1 failed"))
    dom = dump_dom(page)
    assert "1 passed, 1 failed" in dom and "bce-wrong" in dom and "FAIL" in dom
    png = screenshot(page, tmp_path / "check.png", height=900)
    _nonblank(png)
    _keep_screenshot(png, "check-report.png")


def test_hostile_names_stay_text_in_chromium(tmp_path):
    name = HOSTILE[0] + HOSTILE[1]
    result = lossctl.compute({"loss": "ce", "logits": [[1.0, 2.0]], "target": [0]}, explain=True)
    text = pages.loss_page(result, pages.LossPage("ce", sources=[pages.SourceInfo("logits", name, (1, 2), "float64")]))
    dom = dump_dom(_write_page(tmp_path, "hostile.html", text))
    tree_text = re.sub(r"<[^>]+>", "", dom)
    assert "<script>alert(1)</script>" not in dom.replace("&lt;", "<").split("<body", 1)[1].split("</body>")[0] \
        or "&lt;script&gt;" in dom
    assert "<img" not in dom.split("<body", 1)[1]
    assert "alert(1)" in tree_text
