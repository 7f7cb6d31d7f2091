"""What every benchmark script records beside its table: the machine (``mamba_edu.bench``) and the JSON file."""

import json
from pathlib import Path

from mamba_edu.bench import machine_info  # noqa: F401  (the scripts import it from here too)


def write_json(result: dict, path) -> Path:
    """Write ``result`` to ``path`` (folders created) and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return out
