"""One declaration of a loss call: every key it takes, and the typed :class:`Request` built from them.

A call is a loss name plus keys. The loss declares its own keys (its array inputs and its
parameters, in :class:`~lossctl.core.registry.LossSpec`); every other key is one row of
:data:`KEYS` below. Everything else is derived from these rows: the options of each loss
command (``lossctl ce --rows 5``: the CLI spells key ``rows`` as ``--rows``), the keys a
check-suite case accepts (:func:`suite_keys`), what ``lossctl record`` writes into a case,
and which keys :func:`lossctl.compute` takes.

How to add things (the whole recipe; nothing else lists keys or commands):

* a new key of every loss call (``top``, ``html``, ``convention``, ``backend``): add one
  :class:`Key` row to :data:`KEYS` (name in snake case, kind, group, help, default, ``suite``
  False when it only shapes the output). The loss commands, ``record`` and ``gradcheck``
  get the option ``--kebab-name``; a suite case accepts the key when ``suite`` is True; the
  value arrives in the command body's :class:`Request` under its group
  (``request.output["top"]``, ``request.execution["backend"]``, ...). Keys in the groups
  ``Parameters`` and ``Regularisation`` go to :func:`lossctl.compute`; read the others where
  they act (a renderer, a backend). In help and error texts name another key with
  :func:`lossctl.errors.ref` (``ref("output")``), never its option spelling.
* a new top-level command (``lm``, ``diff``, ``compare``): add its name to :data:`COMMANDS_AFTER_LOSSES`
  and write ``lossctl/cli/<name>.py`` with ``register(app)`` (see ``lossctl/cli/info.py``);
  its output goes in ``lossctl/render/<name>.py``. A loss may not take a command's name.
* a new output section: a function in ``lossctl/render/`` (``text.py`` for plain/JSON/CSV,
  ``table.py`` for rich tables) called from the command's render step
  (:func:`lossctl.render.result.render_result` for loss commands).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import ref
from .expectations import DEFAULT_ATOL, DEFAULT_RTOL
from .registry import FRAMEWORKS, PREDICTION_KINDS, LossSpec

# The top-level commands besides the losses, in help order (the losses' commands come between
# the two tuples); lossctl/cli/<name>.py registers each with its register(app).
COMMANDS_BEFORE_LOSSES = ("list",)
COMMANDS_AFTER_LOSSES = ("check", "record", "gradcheck", "info", "diff", "lm", "linear-ce", "compare", "completion")
COMMANDS = COMMANDS_BEFORE_LOSSES + COMMANDS_AFTER_LOSSES
# Names no loss may take: the commands and the help command.
RESERVED_NAMES = frozenset(COMMANDS + ("help",))

# Groups, in the order the help shows them. Inputs: array sources and how to read them;
# Parameters and Regularisation: the computation; Output: what is shown or written;
# Checks: expected values; Execution: how it runs (not what it computes).
GROUPS = ("Inputs", "Parameters", "Regularisation", "Output", "Checks", "Execution")
# Groups whose keys are part of the computation (passed to compute()).
COMPUTE_GROUPS = ("Parameters", "Regularisation")

# A key's kind: how the CLI converts its text and the suite validates its value.
KINDS = ("source", "named_sources", "float", "int", "bool", "text", "choice")


@dataclass(frozen=True)
class Key:
    """One key of a loss call shared by every loss (a loss's own inputs and parameters are in its spec).

    ``name`` is the snake-case key (the CLI option is ``--kebab-case``); ``short`` an extra
    CLI spelling (``-f``); ``suite`` whether a check-suite case takes the key (False for keys
    that only shape the output); ``applies(spec)`` limits the key to some losses.
    """

    name: str
    kind: str
    group: str
    help: str
    default: Any = None
    suite: bool = True
    short: str = ""
    choices: tuple[str, ...] = ()
    applies: Callable[[LossSpec], bool] | None = None
    # The key's help depends on the loss (reduction lists the loss's reductions).
    help_for: Callable[[LossSpec], str] | None = None
    # A project may pin the key's default ([tool.lossctl] in pyproject.toml, or lossctl.toml).
    config: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.group not in GROUPS:
            raise ValueError(f"key {self.name!r}: kind {self.kind!r} / group {self.group!r}")

    def applies_to(self, spec: LossSpec) -> bool:
        if spec.command_keys is not None:  # a command of its own names the shared keys it takes
            return self.name in spec.command_keys
        return self.applies is None or self.applies(spec)

    def help_text(self, spec: LossSpec | None = None) -> str:
        if spec is not None and self.name in spec.key_help:
            return spec.key_help[self.name]
        return self.help_for(spec) if self.help_for is not None and spec is not None else self.help


DTYPES = ("float64", "float32")
BACKENDS = ("local", "dask")
DEFAULT_EXCLUDE = "bias"

# The loss's own settings: listed before the loss's parameters.
LOSS_KEYS: tuple[Key, ...] = (
    Key("reduction", "choice", "Parameters", "Reduction: mean, sum, none.", "mean", short="-r",
        help_for=lambda spec: f"Reduction: {', '.join(spec.reductions)}."),
    Key("dim", "int", "Parameters", "The class dimension (default 1, or 0 for a 1-D input), as PyTorch.",
        applies=lambda spec: spec.class_axis),
)

# Keys every loss takes, after the loss's parameters (this order is the help's order).
SHARED_KEYS: tuple[Key, ...] = (
    Key("stdin_format", "text", "Inputs",
        "Format of '-' (stdin): npy, npz, csv, tsv, txt, json, yaml. Sniffed when omitted.", suite=False, config=True),
    Key("dtype", "choice", "Parameters",
        f"Compute in float64 (default; float32 under {ref('convention')} keras, as Keras does) or float32.",
        choices=DTYPES, config=True),
    Key("convention", "choice", "Parameters",
        "Whose numbers: torch, keras, optax or sklearn (default: torch, or the loss's home framework).",
        choices=FRAMEWORKS, config=True,
        help_for=lambda spec: f"Whose numbers: {', '.join(spec.convention_names)} (this loss's frameworks; default "
                              f"{spec.home}). {ref('explain')} shows the framework's own steps; 'lossctl compare "
                              f"{spec.name}' runs them all."),
    Key("sample_weight", "source", "Parameters", "Per-sample weights (the Keras and scikit-learn conventions)."),
    Key("strict", "bool", "Inputs",
        "Refuse inputs that only draw a warning (NaN or inf values, target probabilities that do not sum to 1): "
        "exit 3 instead.", False, suite=False),
    Key("l2", "float", "Regularisation", f"Add the L2 penalty 0.5·α·Σw² over {ref('params')} (α = this value)."),
    Key("l1", "float", "Regularisation", f"Add the L1 penalty β·Σ|w| over {ref('params')} (β = this value)."),
    Key("params", "named_sources", "Regularisation",
        f"Model parameters for {ref('l1')}/{ref('l2')}: one array, or an .npz (JSON/YAML mapping) of several."),
    Key("exclude_params", "text", "Regularisation",
        "Parameters whose name contains this get no penalty (by default the biases); '' for none.", DEFAULT_EXCLUDE, config=True),
    Key("format", "text", "Output",
        "Output format: auto (table on a terminal, plain otherwise), table, json, plain, csv.", "auto",
        suite=False, short="-f", config=True),
    Key("json", "bool", "Output", f"Short for {ref('format')} json.", False, suite=False),
    Key("per_sample", "bool", "Output", "Also show the per-sample (reduction='none') values.", False),
    Key("grad", "bool", "Output", "Also show d(loss)/d(prediction), as PyTorch's autograd gives it.", False),
    Key("explain", "bool", "Output", "Also show the step-by-step derivation.", False, suite=False),
    Key("rows", "int", "Output", f"Samples shown by {ref('explain')} and in per-sample tables.", 3, suite=False, config=True),
    Key("precision", "int", "Output", "Significant digits of the numbers in tables (1 to 17; plain, JSON and CSV "
        "always give every digit).", 8, suite=False, config=True),
    Key("output", "text", "Output",
        f"Write per-sample values (and with {ref('grad')} the gradient) to .npy, .npz, .csv or .safetensors.", suite=False, short="-o"),
    Key("html", "text", "Output",
        "Also write the call as one self-contained HTML page: the inputs, the value, the derivation with its "
        "formulas typeset, the reduction, per-sample values and gradients.", suite=False),
    Key("force", "bool", "Output", f"Allow {ref('output')}, {ref('html')} or {ref('plot')} to replace an existing "
        "file.", False, suite=False),
    Key("top", "int", "Output", "Also list the K samples with the largest loss (index, loss, target, predicted "
        "class or value).", suite=False),
    Key("hist", "bool", "Output", "Also show a histogram of the per-sample losses.", False, suite=False),
    Key("plot", "text", "Output", "Draw the histogram of the per-sample losses into FILE.png or FILE.svg "
        "(needs matplotlib: pip install 'lossctl[plot]').", suite=False),
    Key("expect", "source", "Checks", "Expected loss value; exit 1 if it differs."),
    Key("expect_per_sample", "source", "Checks", "Expected per-sample values (an array source)."),
    Key("expect_grad", "source", "Checks", "Expected gradient of the prediction input (an array source)."),
    Key("rtol", "float", "Checks", "Relative tolerance, as numpy.isclose.", DEFAULT_RTOL, config=True),
    Key("atol", "float", "Checks", "Absolute tolerance, as numpy.isclose.", DEFAULT_ATOL, config=True),
    Key("backend", "choice", "Execution",
        "Where the rows are computed: local (this process, streaming large inputs) or dask (a Dask cluster: "
        f"{ref('scheduler')}, or a local one; needs pip install 'lossctl[dask]'). The result is the same bit for bit.",
        "local", suite=False, choices=BACKENDS, applies=lambda spec: spec.batch_axis == 0, config=True),
    Key("scheduler", "text", "Execution",
        f"Address of the Dask scheduler for {ref('backend')} dask (tcp://HOST:8786); a local cluster when omitted.",
        suite=False, applies=lambda spec: spec.batch_axis == 0, config=True),
    Key("chunk_rows", "int", "Execution",
        f"Rows per task with {ref('backend')} dask (rows per block when streaming locally); default: by size.",
        suite=False, applies=lambda spec: spec.batch_axis == 0, config=True),
)

KEYS: tuple[Key, ...] = LOSS_KEYS + SHARED_KEYS
BY_NAME: Mapping[str, Key] = {k.name: k for k in KEYS}

# Keys of a suite case that are not keys of the command line: the loss (the CLI's command)
# and the case's name.
CASE_ONLY_KEYS = ("loss", "name")


def keys_in(*groups: str) -> tuple[str, ...]:
    """The shared keys of the given groups, in declaration order."""
    return tuple(k.name for k in KEYS if k.group in groups)


def config_keys() -> tuple[Key, ...]:
    """The keys a project configuration may give a default to (``config=True`` rows)."""
    return tuple(k for k in KEYS if k.config)


def output_only_keys() -> tuple[str, ...]:
    """Keys of the command line that a suite case does not take."""
    return tuple(k.name for k in KEYS if not k.suite)


def array_keys(spec: LossSpec) -> tuple[str, ...]:
    """Keys of ``spec``'s call whose value is an array (a source on the command line)."""
    names = list(spec.prediction_kinds) + [k for k in spec.inputs if k not in PREDICTION_KINDS]
    names += [p.name for p in spec.all_params if p.kind == "array"]
    names += ["sample_weight"] if BY_NAME["sample_weight"].applies_to(spec) else []
    return tuple(dict.fromkeys(names))


def call_keys(spec: LossSpec) -> tuple[str, ...]:
    """Every key of a call of ``spec`` on the command line, in help order: inputs, the loss's
    settings, its parameters, then the shared keys."""
    inputs = list(spec.prediction_kinds) + list(spec.extra_inputs)
    if spec.target != "none":
        inputs.append("target")
    inputs += list(spec.aux_inputs)
    own = [k.name for k in LOSS_KEYS if k.applies_to(spec)] + [p.name for p in spec.all_params]
    shared = [k.name for k in SHARED_KEYS if k.applies_to(spec)]
    return tuple(dict.fromkeys(inputs + own + shared))


def suite_keys(spec: LossSpec) -> tuple[str, ...]:
    """Every key a check-suite case of ``spec`` takes."""
    return CASE_ONLY_KEYS + tuple(k for k in call_keys(spec) if k not in BY_NAME or BY_NAME[k].suite)


def compute_keys(spec: LossSpec) -> tuple[str, ...]:
    """Keys :func:`lossctl.compute` takes for ``spec``: loss, inputs, parameters, regularisation."""
    inputs = tuple(PREDICTION_KINDS) + tuple(spec.inputs)
    own = tuple(p.name for p in spec.all_params)
    return ("loss",) + tuple(dict.fromkeys(inputs + own + keys_in(*COMPUTE_GROUPS)))


@dataclass
class Request:
    """One loss call, every key sorted into its group: what to compute and how to show and check it.

    ``inputs`` holds the array inputs (values, or source texts before they are read),
    ``params`` the loss's parameters and the Parameters/Regularisation keys (with
    ``reduction``, ``dtype``, ``dim``), ``output``, ``checks`` and ``execution`` the other
    groups' keys (``Inputs``-group settings such as ``stdin_format`` are in ``execution``).
    Keys left at None are absent.
    """

    loss: str
    inputs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_values(cls, spec: LossSpec, values: Mapping[str, Any]) -> "Request":
        """Sort a flat mapping key -> value (a command line's options, a suite case) into groups."""
        own = {p.name for p in spec.all_params}
        arrays = set(array_keys(spec)) - own
        req = cls(spec.name)
        for key, value in values.items():
            if key in ("loss", "name"):
                continue
            if key in arrays:
                req.inputs[key] = value
            elif key in own:
                req.params[key] = value
            elif key in BY_NAME:
                group = BY_NAME[key].group
                target = {"Parameters": req.params, "Regularisation": req.params, "Output": req.output,
                          "Checks": req.checks}.get(group, req.execution)
                target[key] = value
            else:
                req.execution[key] = value
        return req

    def get(self, key: str, default: Any = None) -> Any:
        for part in (self.inputs, self.params, self.output, self.checks, self.execution):
            if key in part:
                return part[key]
        return default

    def call(self) -> dict[str, Any]:
        """The mapping :func:`lossctl.compute` takes: the loss, the inputs given and the parameters set."""
        call: dict[str, Any] = {"loss": self.loss}
        call.update((k, v) for k, v in self.inputs.items() if v is not None)
        call.update((k, v) for k, v in self.params.items() if v is not None)
        return call
