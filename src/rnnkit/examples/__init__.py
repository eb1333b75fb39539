"""The article's applications as short scripts, each one run by ``rnnkit demo <name>``.

Every module here (its file name is the demo's name) is a readable program with the same surface:

* the module docstring's first line is the one-line description ``rnnkit demo --list`` prints; the
  rest says what it trains, on which data, and the bar it must reach;
* ``main(argv: list[str] | None = None) -> dict`` parses its own options (always ``--quick``, a
  seconds-long run that CI checks against its own bar, and ``--seed``), prints its progress and
  results, and returns the figures it printed (e.g. ``{"cer": 0.04, "baseline_cer": 0.61}``);
* ``python -m rnnkit.examples.<name>`` runs it as well.

Modules are imported only when run, and import their optional dependencies (scikit-learn,
statsmodels, matplotlib) inside ``main`` through ``require``, so a missing one is reported with
the command that installs it and costs the other demos nothing.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any, Callable

_HERE = Path(__file__).parent


def demos() -> dict[str, str]:
    """``{name: one-line description}`` of every demo, read from the files without importing them."""
    found = {}
    for path in sorted(_HERE.glob("*.py")):
        if path.name.startswith("_"):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        found[path.stem] = doc.strip().splitlines()[0] if doc.strip() else ""
    return found


def get(name: str) -> Callable[[list[str] | None], dict[str, Any]]:
    """The ``main`` function of the demo called ``name``."""
    known = demos()
    if name not in known:
        raise ValueError(f"Unknown demo {name!r}; the demos are: {', '.join(known)} (rnnkit demo --list).")
    return importlib.import_module(f"rnnkit.examples.{name}").main


def require(module: str, extra: str, package: str | None = None) -> Any:
    """Import an optional dependency, or stop with the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"This demo needs {package or module}: pip install 'rnnkit[{extra}]' "
                          f"(or pip install {package or module}).") from None


__all__ = ["demos", "get", "require"]
