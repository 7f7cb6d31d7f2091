"""The one lazy-import helper: names of a package that are imported on first use (PEP 562).

Used by ``mamba_edu`` (the public API) and ``mamba_edu.widgets`` (the explorers), so that importing them stays
light (no numpy, torch, matplotlib or CuPy until a name is used).
"""

import sys
from importlib import import_module


def lazy_getattr(package, table, aliases=None):
    """A module ``__getattr__`` (PEP 562) that imports ``table[name]`` (a module path) on first use.

    ``package``: the module's ``__name__`` (for the error message); ``aliases``: old name -> current name.
    """
    aliases = aliases or {}

    def __getattr__(name):
        target = aliases.get(name, name)
        if target in table:
            value = getattr(import_module(table[target]), target)
            vars(sys.modules[package])[name] = value  # cache: later look-ups skip __getattr__
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
