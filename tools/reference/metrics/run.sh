#!/usr/bin/env bash
# Regenerates the metrics reference fixtures with pinned scikit-learn/scipy/statsmodels.
# Usage: tools/reference/metrics/run.sh   (creates tools/reference/.venv on first use)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="$root/tools/reference/.venv"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" "$here/make_fixtures.py" "$root/crates/cxr-core/tests/fixtures/metrics/reference.json"
