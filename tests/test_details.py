"""Details that agree everywhere: --rows obeyed, `lossctl list` auto, the progress bar's phase and
moving ETA, the kl 'mean' warning, out-of-range option values exit 2."""

from __future__ import annotations

import io
import json
import re

import pytest

import lossctl

LOGITS = json.dumps([[float(i), 0.0, -1.0] for i in range(12)])
TARGET = json.dumps([0] * 12)


def test_rows_is_obeyed_in_per_sample_tables(run_cli):
    for rows in (1, 5, 12):
        out = run_cli(["ce", "--logits", LOGITS, "--target", TARGET, "--per-sample", "--rows", str(rows),
                       "--format", "table"]).stdout
        body = [line for line in out.splitlines() if re.match(r"^│\s+\d+\s+│", line)]
        assert len(body) == rows, out


def test_list_is_auto_plain_on_a_pipe_and_never_breaks_a_name(run_cli):
    out = run_cli(["list"]).stdout  # captured: not a terminal
    names = [line.split("\t")[0] for line in out.splitlines()]
    assert names == lossctl.registry_names()
    table = run_cli(["list", "--format", "table"]).stdout
    cells = {c.strip() for line in table.splitlines() for c in line.split("│")[1:2]}
    assert set(lossctl.registry_names()) <= cells  # each name whole on one line of its column


def test_progress_bar_names_the_phase_and_its_eta_counts_down():
    from lossctl.cli.progress import phase_label, progress_bar, remaining_seconds

    # 10 of 100 rows took 2 s: 18 s left at that moment, and one second later 17 s
    assert remaining_seconds(10, 100, 2.0, 2.0) == pytest.approx(18.0)
    assert remaining_seconds(10, 100, 2.0, 3.0) == pytest.approx(17.0)
    assert remaining_seconds(0, 100, 2.0, 3.0) is None
    assert phase_label("ce: loss and gradient", 1) == "ce: loss and gradient"
    assert phase_label("ce: loss and gradient", 2) == "ce: loss and gradient (pass 2)"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    with progress_bar(delay=0.0, stream=stream, label="ce: loss") as progress:
        progress(10, 100)
        progress(5, 100)  # the rows start over
    assert "ce: loss (pass 2)" in stream.getvalue()


def test_kl_mean_warns_as_the_readme_says(run_cli):
    call = ["kl", "--log-probs", "[[-1.2, -0.4]]", "--target", "[[0.3, 0.7]]"]
    r = run_cli(call)
    assert r.code == 0 and r.stderr.startswith("warning: --reduction mean divides by the number of elements")
    assert run_cli(call + ["--strict"]).code == 0  # not about the inputs: never refused
    assert run_cli(call + ["--reduction", "batchmean"]).stderr == ""


@pytest.mark.parametrize("argv", [
    ["ce", "--logits", LOGITS, "--target", TARGET, "--rows", "-1"],
    ["ce", "--logits", LOGITS, "--target", TARGET, "--label-smoothing", "1.5"],
    ["ce", "--logits", LOGITS, "--target", TARGET, "--rtol", "-1"],
    ["ce", "--logits", LOGITS, "--target", TARGET, "--top", "0"],
    ["gradcheck", "ce", "--logits", LOGITS, "--target", TARGET, "--tol", "-1"],
    ["diff", "[1]", "[1]", "--top", "0"],
    ["diff", "[1]", "[1]", "--rtol", "-1"],
    ["info", "--p", "[0.5, 0.5]", "--rows", "-1"],
])
def test_an_option_value_out_of_range_is_a_usage_error_everywhere(run_cli, argv):
    r = run_cli(argv)
    assert r.code == lossctl.ExitCode.USAGE, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1


def test_gradcheck_at_a_kink_says_not_differentiable_instead_of_fail(run_cli):
    # hinge at the margin: y·a = 1 for the first sample
    r = run_cli(["gradcheck", "hinge", "--pred", "[1.0, 0.5]", "--target", "[1, 1]"])
    assert r.code == 0, r.stdout
    assert "not differentiable at this point: pred[0] is a kink (one-sided slopes -0.5 and 0)" in r.stdout
    assert r.stdout.splitlines()[-1].startswith("PASS gradcheck hinge")
    doc = json.loads(run_cli(["gradcheck", "hinge", "--pred", "[1.0, 0.5]", "--target", "[1, 1]", "--json"]).stdout)
    assert doc["inputs"]["pred"]["not_differentiable"][0]["index"] == [0]


def test_gradcheck_never_calls_a_smooth_point_a_kink(run_cli):
    # exp(−y·a) at a = −8: large curvature, no kink; l1 at 0: a kink whose central difference is exact
    for argv in (["exponential", "--pred", "[-8.0, 0.5]", "--target", "[1, 1]"],
                 ["mse", "--pred", "[1.0, 0.5]", "--target", "[0, 0]"]):
        r = run_cli(["gradcheck", *argv])
        assert r.code == 0 and "not differentiable" not in r.stdout, r.stdout
