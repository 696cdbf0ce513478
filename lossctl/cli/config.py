"""Project configuration: defaults for the keys of :mod:`lossctl.core.call` marked ``config``.

Read from ``lossctl.toml`` or the ``[tool.lossctl]`` table of ``pyproject.toml``, found in the
current directory or the nearest parent that has one (``lossctl.toml`` wins in a directory, and a
``pyproject.toml`` without ``[tool.lossctl]`` is passed over), as ruff and pytest find theirs.
``--config FILE`` names the file instead, ``--isolated`` ignores every file. A value given on
the command line (or in a suite) beats the file; the file beats lossctl's own default.

    [tool.lossctl]
    rtol = 1e-6
    atol = 1e-9
    dtype = "float32"
    format = "json"
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.call import BY_NAME, config_keys
from ..errors import UsageError

FILES = ("lossctl.toml", "pyproject.toml")
TABLE = "tool.lossctl"
DEFAULT = "default"
COMMAND_LINE = "command line"


@dataclass
class Config:
    """The configuration in effect: ``values`` by key (snake case), read from ``path``."""

    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """Where the values come from, as the report shows it."""
        if self.path is None:
            return DEFAULT
        return f"{self.path} [{TABLE}]" if self.path.name == "pyproject.toml" else str(self.path)

    def default(self, key: str, fallback: Any = None) -> Any:
        """The project's default for ``key`` (``fallback`` when the file does not set it)."""
        return self.values.get(key, fallback)


_ACTIVE: Config | None = None


def discover(start: Path) -> Path | None:
    """The configuration file that applies in ``start``: the nearest directory with one."""
    for folder in (start, *start.parents):
        for name in FILES:
            path = folder / name
            if path.is_file() and (name != "pyproject.toml" or _table(path) is not None):
                return path
    return None


def load(path: Path) -> Config:
    """Read and check ``path``: every key is a configurable key and its value fits the key."""
    table = _table(path) if path.name == "pyproject.toml" else _read(path)
    if table is None:
        raise UsageError(f"--config {path}: no [{TABLE}] table")
    allowed = {k.name: k for k in config_keys()}
    values: dict[str, Any] = {}
    for raw, value in table.items():
        name = str(raw).replace("-", "_")
        key = allowed.get(name)
        if key is None:
            close = difflib.get_close_matches(name, list(allowed), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"{path}: unknown key '{raw}'{hint} (keys: {', '.join(sorted(allowed))})")
        values[name] = _checked(path, raw, key, value)
    return Config(path, values)


def _checked(path: Path, raw: str, key: Any, value: Any) -> Any:
    kinds = {"float": (int, float), "int": (int,), "text": (str,), "choice": (str,), "bool": (bool,)}[key.kind]
    if isinstance(value, bool) and key.kind != "bool" or not isinstance(value, kinds):
        raise UsageError(f"{path}: '{raw}': expected {'a number' if key.kind == 'float' else 'an integer' if key.kind == 'int' else 'a string'}, got {value!r}")
    if key.choices and value not in key.choices:
        raise UsageError(f"{path}: '{raw}': expected one of {', '.join(key.choices)}, got {value!r}")
    if key.kind in ("float", "int") and value < 0:
        raise UsageError(f"{path}: '{raw}': expected a number ≥ 0, got {value!r}")
    return float(value) if key.kind == "float" else value


def _read(path: Path) -> dict[str, Any]:
    import tomllib  # only when there is a file to read: most calls have none

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None


def _table(path: Path) -> dict[str, Any] | None:
    data: Any = _read(path)
    for part in TABLE.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else None


def take_options(args: list[str]) -> list[str]:
    """Set the configuration from ``--config FILE`` / ``--isolated`` anywhere in ``args`` (or by
    discovery from the current directory) and return ``args`` without those options."""
    global _ACTIVE
    rest: list[str] = []
    path: str | None = None
    isolated = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest += args[i:]
            break
        if a == "--isolated":
            isolated = True
        elif a == "--config":
            if i + 1 >= len(args):
                raise UsageError("--config: needs a FILE (a lossctl.toml or a pyproject.toml with [tool.lossctl])")
            path = args[i + 1]
            i += 1
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    if path is not None and isolated:
        raise UsageError("--config and --isolated: give one of them")
    if isolated:
        _ACTIVE = Config()
    elif path is not None:
        p = Path(path)
        if not p.is_file():
            raise UsageError(f"--config {path}: no such file")
        _ACTIVE = load(p)
    else:
        found = discover(Path(os.getcwd()))
        _ACTIVE = load(found) if found is not None else Config()
    return rest


def active() -> Config:
    """The configuration of this run (discovered from the current directory if not set yet)."""
    global _ACTIVE
    if _ACTIVE is None:
        found = discover(Path(os.getcwd()))
        _ACTIVE = load(found) if found is not None else Config()
    return _ACTIVE


def resolve(opts: dict[str, Any]) -> dict[str, Any]:
    """``opts`` with each configurable key left unset (None) filled from the configuration, else
    lossctl's default; :func:`settings` then tells where each value came from."""
    config = active()
    out = dict(opts)
    origins: dict[str, str] = {}
    for key in config_keys():
        if key.name not in out:
            continue
        if out[key.name] is not None:
            origins[key.name] = COMMAND_LINE
        elif key.name in config.values:
            out[key.name] = config.values[key.name]
            origins[key.name] = config.source
        else:
            out[key.name] = key.default
            origins[key.name] = DEFAULT
    _ORIGINS.clear()
    _ORIGINS.update({k: (out[k], v) for k, v in origins.items()})
    return out


_ORIGINS: dict[str, tuple[Any, str]] = {}


def settings() -> dict[str, tuple[Any, str]]:
    """The configurable keys of the last resolved call: key -> (value, where it came from)."""
    return dict(_ORIGINS)


def suite_defaults() -> dict[str, Any]:
    """What the configuration gives a check suite: values for the case keys a suite takes."""
    return {k: v for k, v in active().values.items() if BY_NAME[k].suite}
