"""What every benchmark script records beside its table: the machine, and the JSON file."""

import json
import os
import platform
from pathlib import Path


def machine_info(**versions) -> dict:
    """CPU, core count, load average at the time (other load inflates timings) and package versions."""
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_average": os.getloadavg(), **versions}


def write_json(result: dict, path) -> Path:
    """Write ``result`` to ``path`` (folders created) and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return out
