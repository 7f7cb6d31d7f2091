"""Recorded results (JSON) shipped with the package; read them with :func:`load`."""

import json
from importlib import resources


def load(name):
    """The recorded data file ``mamba_edu/data/<name>.json``, parsed."""
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text())
