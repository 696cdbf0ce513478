"""Command-line options, generated: a loss's inputs and parameters (its spec) and the shared keys
(:data:`lossctl.core.call.KEYS`) become options by one rule, ``key`` -> ``--key-in-kebab-case``.

No option is declared here by hand: add a key to :mod:`lossctl.core.call` and every loss
command (and ``record``, ``gradcheck``) has the option.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any

from ..core.call import LOSS_KEYS, SHARED_KEYS, Key
from ..core.registry import LossSpec, Param
from ..errors import UsageError, spell_refs

INPUT_HELP = {
    "logits": "Raw scores (logits).",
    "probs": "Probabilities.",
    "log_probs": "Log-probabilities.",
    "pred": "Predictions (regression).",
    "target": "Target: class indices, class probabilities or values.",
}
SOURCE_HELP = "A file (.npy .npz .csv .tsv .txt .json .yaml, FILE:KEY), '-' for stdin, or an inline literal like '[0,2]'."


def option_name(key: str) -> str:
    """The command line's spelling of call key ``key``: ``per_sample`` -> ``--per-sample``."""
    return "--" + key.replace("_", "-")


def spell(text: str) -> str:
    """``text`` with every key reference (:func:`lossctl.errors.ref`) spelt as its option."""
    return spell_refs(text, option_name)


@dataclass(frozen=True)
class Opt:
    """One option of a command: ``name`` is the key (the Python parameter), ``decls`` its spellings."""

    name: str
    decls: tuple[str, ...]
    type: Any
    default: Any
    help: str
    panel: str
    hidden: bool = False
    choices: tuple[str, ...] = ()  # the values shell completion offers
    shown_default: str | None = None  # the default the help shows, when the option's own is None


_KIND_TYPES = {"float": float, "int": int, "bool": bool, "array": str | None, "choice": str, "text": str,
               "source": str | None, "named_sources": str | None}


def input_option(name: str, hidden: bool = False, aliases: tuple[str, ...] = ()) -> Opt:
    decls = (option_name(name),) + tuple(option_name(a) for a in aliases)
    decls += ("-t",) if "target" in (name, *aliases) else ()
    return Opt(name, decls, str | None, None, f"{INPUT_HELP.get(name, name.replace('_', ' ').capitalize() + '.')} {SOURCE_HELP}", "Inputs", hidden)


def key_option(key: Key, spec: LossSpec | None = None) -> Opt:
    """The option of a shared call key."""
    decls = (option_name(key.name),) + ((key.short,) if key.short else ())
    kind = _KIND_TYPES[key.kind]
    if key.default is None and kind in (float, int, str):
        kind = kind | None
    choices = key.choices
    if key.name == "reduction" and spec is not None:
        choices = tuple(spec.reductions)
    elif key.name == "format":
        from ..render import FORMATS

        choices = tuple(FORMATS)
    if key.config and key.default is not None:
        # None until the call is resolved: the project's configuration (lossctl.cli.config) or the default
        return Opt(key.name, decls, kind | None, None, spell(key.help_text(spec)), key.group, choices=choices,
                   shown_default=str(key.default))
    return Opt(key.name, decls, kind, key.default, spell(key.help_text(spec)), key.group, choices=choices)


def spec_options(spec: LossSpec) -> list[Opt]:
    """Every option of ``lossctl NAME``: inputs, the loss's settings and parameters, then the shared keys."""
    aliases = spec.input_aliases
    opts = [input_option(k, hidden=k not in spec.kinds) for k in spec.prediction_kinds]
    opts += [input_option(k, aliases=aliases.get(k, ())) for k in spec.extra_inputs]
    if spec.target != "none":
        opts.append(input_option("target"))
    opts += [input_option(k, aliases=aliases.get(k, ())) for k in spec.aux_inputs]
    opts = [_with_help(o, spec.input_help.get(o.name)) for o in opts]
    opts += [key_option(k, spec) for k in LOSS_KEYS if k.applies_to(spec)]
    # A command of its own shows its optional arrays (masks, biases) with its inputs.
    array_panel = "Inputs" if spec.command_keys is not None else "Parameters"
    opts += [_param_option(p, array_panel) for p in spec.all_params]
    opts += [key_option(k, spec) for k in SHARED_KEYS if k.applies_to(spec)]
    return opts


def _with_help(opt: Opt, text: str | None) -> Opt:
    """An input option with the loss's own help text (``LossSpec.input_help``), source syntax kept."""
    if not text:
        return opt
    return dataclasses.replace(opt, help=f"{spell(text)} {SOURCE_HELP}")


def _param_option(p: Param, array_panel: str = "Parameters") -> Opt:
    option = option_name(p.name)
    if p.kind == "bool":
        decls = (option if not p.default else f"{option}/--no-{option[2:]}",)
    else:
        decls = (option,)
    default = p.default if p.kind != "array" else None
    help_text = spell(p.help)  # Typer shows "[default: ...]" itself
    if p.kind == "array":
        help_text += " An array source, as for inputs."
    return Opt(p.name, decls, _KIND_TYPES[p.kind], default, help_text,
               array_panel if p.kind == "array" else "Parameters", choices=tuple(p.choices))


def check_precision(digits: int | None) -> int | None:
    """``--precision``: significant digits of the numbers in tables, 1 to 17 (None: the default)."""
    if digits is not None and not 1 <= digits <= 17:
        raise UsageError(f"--precision: significant digits from 1 to 17, got {digits}")
    return digits


def table_digits(digits: int | None) -> int | None:
    """The digits of a hand-built command's tables (``check``, ``info``, ``diff``): ``--precision``
    when given, else the project's configured ``precision``, else None (the default); checked."""
    if digits is None:
        from .config import active

        digits = active().default("precision")
    return check_precision(digits)


def pick_format(opts_format: str, json_: bool, allowed) -> str:
    fmt = "json" if json_ else opts_format
    if fmt not in allowed:
        raise UsageError(f"--format: expected one of {', '.join(allowed)}, got {fmt!r}")
    if fmt == "auto":
        fmt = "table" if sys.stdout.isatty() else "plain"
    return fmt
