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
    page = assert_self_contained(pages.check_page("suite", "/tmp/suite.yaml", rows, "2 passed, 1 failed"))
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
    _nonblank(screenshot(page, tmp_path / "seed.png"))


def test_check_report_in_chromium(tmp_path):
    rows = [pages.CaseRow("seed-ce", "ce", "pass", "0.549329", "0.5493288448141933", "8.4e-07", 3),
            pages.CaseRow("bce-wrong", "bce", "fail", "0.5", "0.46204", "0.038", 11,
                          "loss expected 0.5 actual 0.4620419 abs 0.038 rel 0.076")]
    page = _write_page(tmp_path, "check.html", pages.check_page("ci.yaml", "examples/ci/ci.yaml", rows,
                                                                 "1 passed, 1 failed"))
    dom = dump_dom(page)
    assert "1 passed, 1 failed" in dom and "bce-wrong" in dom and "FAIL" in dom
    _nonblank(screenshot(page, tmp_path / "check.png", height=900))


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


# --------------------------------------------------------------------------- --html on the command line


SEED = ["ce", "--logits", "[[10,0,-10],[8,8,8]]", "--target", "[0,2]"]


def test_loss_call_writes_its_page_besides_the_normal_output(run_cli, tmp_path):
    page = tmp_path / "seed.html"
    res = run_cli([*SEED, "--html", page])
    assert res.code == 0 and res.stdout == "0.5493288448141933\n"
    body = assert_self_contained(page.read_text(encoding="utf-8")).all_text()
    assert "0.5493288448141933" in body and "log-sum-exp" in body and "d(loss)/d(logits)" in body
    assert "The 2 largest losses." in body or "largest losses" in body


def test_page_names_a_hostile_file_only_as_text(run_cli, tmp_path):
    name = '"><img src=x onerror=alert(2)><script>alert(1)<b>.npy'  # a file name cannot hold '/'
    np.save(tmp_path / name, np.array([[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]))
    page = tmp_path / "page.html"
    res = run_cli(["ce", "--logits", tmp_path / name, "--target", "[0,2]", "--html", page])
    assert res.code == 0, res.stderr
    parsed = assert_self_contained(page.read_text(encoding="utf-8"))
    assert not {"img", "script", "b"} & set(parsed.names()) and name in parsed.all_text()


def test_page_follows_the_output_policy(run_cli, tmp_path):
    page = tmp_path / "p.html"
    page.write_text("mine")
    res = run_cli([*SEED, "--html", page])
    assert res.code == 2 and "--html" in res.stderr and "--force" in res.stderr and page.read_text() == "mine"
    assert run_cli([*SEED, "--html", page, "--force"]).code == 0 and "<!DOCTYPE html>" in page.read_text()
    logits = tmp_path / "logits.html"  # an input that happens to end in .html is never replaced
    logits.write_text("[[1.0, 2.0]]")
    before = logits.read_bytes()
    res = run_cli(["ce", "--logits", f"{logits}", "--stdin-format", "json", "--target", "[0]", "--html", logits,
                   "--force"])
    assert res.code in (2, 3) and logits.read_bytes() == before
    res = run_cli([*SEED, "--html", tmp_path / "page.txt"])
    assert res.code == 2 and ".html" in res.stderr


def _failing_suite(tmp_path: Path) -> Path:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "cases:\n"
        "  - name: seed-ce\n    loss: ce\n    logits: [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]\n    target: [0, 2]\n"
        "    expect: 0.549329\n    atol: 1.0e-6\n"
        "  - name: '<b>bce</b> wrong'\n    loss: bce\n    probs: [0.2, 0.9]\n    target: [0.0, 1.0]\n"
        "    expect: 0.5\n", encoding="utf-8")
    return suite


def test_check_writes_a_report_page_failures_first(run_cli, tmp_path):
    page = tmp_path / "report.html"
    res = run_cli(["check", _failing_suite(tmp_path), "--html", page])
    assert res.code == 1
    parsed = assert_self_contained(page.read_text(encoding="utf-8"))
    body = parsed.all_text()
    assert "1 passed, 1 failed" in body and "<b>bce</b> wrong" in body and "b" not in parsed.names()
    assert body.index("<b>bce</b> wrong") < body.index("seed-ce")
    assert "suite.yaml:8" in body  # the failing case's line


def test_check_page_never_replaces_the_suite(run_cli, tmp_path):
    suite = _failing_suite(tmp_path)
    before = suite.read_bytes()
    res = run_cli(["check", suite, "--html", suite])
    assert res.code == 2 and suite.read_bytes() == before


def test_diff_writes_a_page(run_cli, tmp_path):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((20, 4)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", a.astype(np.float64) + 1e-6)
    page = tmp_path / "diff.html"
    res = run_cli(["diff", tmp_path / "a.npy", tmp_path / "b.npy", "--html", page])
    assert res.code == 1
    body = assert_self_contained(page.read_text(encoding="utf-8")).all_text()
    assert "Worst positions" in body and "ulps of float32" in body and "float32 / float64" in body


def test_cli_pages_in_chromium(run_cli, tmp_path):
    """The pages the README shows, made by the command line and rendered by a real browser."""
    seed, report = tmp_path / "seed.html", tmp_path / "report.html"
    assert run_cli([*SEED, "--html", seed]).code == 0
    assert run_cli(["check", _failing_suite(tmp_path), "--html", report]).code == 1
    dom = dump_dom(seed)
    assert "0.5493288448141933" in dom and "<math" in dom and "negative log-likelihood" in dom
    png = screenshot(seed, tmp_path / "seed.png", height=2200)
    _nonblank(png)
    _keep_screenshot(png, "seed-ce.png")
    dom = dump_dom(report)
    assert "1 passed, 1 failed" in dom and "&lt;b&gt;bce&lt;/b&gt; wrong" in dom
    png = screenshot(report, tmp_path / "report.png", height=700)
    _nonblank(png)
    _keep_screenshot(png, "check-report.png")


def test_lm_writes_a_page(run_cli, tmp_path):
    batch = Path(__file__).resolve().parents[1] / "examples" / "lm" / "batch.safetensors"
    page = tmp_path / "lm.html"
    res = run_cli(["lm", "--logits", f"{batch}:logits", "-t", f"{batch}:labels", "--attention-mask",
                   f"{batch}:attention_mask", "--shift", "--html", page])
    assert res.code == 0, res.stderr
    loss = res.stdout.strip()
    body = assert_self_contained(page.read_text(encoding="utf-8")).all_text()
    assert loss in body and "perplexity" in body and "Per sequence" in body and "bfloat16" in body
    assert "--shift" in body
    res = run_cli(["lm", "--logits", f"{batch}:logits", "-t", f"{batch}:labels", "--html", page])
    assert res.code == 2 and "--force" in res.stderr
