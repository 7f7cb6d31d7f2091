#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up (scripts/setup.sh), lint, notebook hygiene, pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not browser"`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-browser
echo "== ruff"
.venv/bin/ruff check .
echo "== nbstripout --verify"
.venv/bin/nbstripout --verify lessons/*.ipynb
echo "== pytest"
.venv/bin/python -m pytest "$@"
