"""--plot: a real PNG or SVG file, drawn by matplotlib (a test dependency: never skipped)."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from lossctl.errors import UsageError
from lossctl.render.plot import DPI, FIGSIZE, plot_histogram
from lossctl.core.triage import histogram

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def svg_size(text: str) -> tuple[float, float]:
    root = ET.fromstring(text)
    assert root.tag.endswith("svg")
    return float(root.get("width").rstrip("pt")), float(root.get("height").rstrip("pt"))


@pytest.fixture
def hist():
    return histogram(np.random.default_rng(0).exponential(size=500))


def test_png_is_valid_and_of_the_figure_s_size(tmp_path, hist):
    path = tmp_path / "h.png"
    plot_histogram(path, hist, "ce on x.npy (500 samples)", log=False)
    assert png_size(path.read_bytes()) == (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))


def test_svg_parses_and_has_width_and_height(tmp_path, hist):
    path = tmp_path / "h.svg"
    plot_histogram(path, hist, "a title & <markup>", log=True)
    text = path.read_text()
    assert svg_size(text) == (FIGSIZE[0] * 72, FIGSIZE[1] * 72)
    assert "a title &amp; &lt;markup&gt;" in text or "a title" in text


def test_same_inputs_draw_the_same_bytes(tmp_path, hist):
    for suffix in (".png", ".svg"):
        a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
        plot_histogram(a, hist, "t", log=False)
        plot_histogram(b, hist, "t", log=False)
        assert a.read_bytes() == b.read_bytes()


def test_other_suffixes_are_a_usage_error(tmp_path, hist):
    with pytest.raises(UsageError, match="png or .svg"):
        plot_histogram(tmp_path / "h.pdf", hist, "t", log=False)


def test_without_matplotlib_the_message_names_the_extra(tmp_path, hist, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(UsageError, match=r"pip install 'lossctl\[plot\]'"):
        plot_histogram(tmp_path / "h.png", hist, "t", log=False)
