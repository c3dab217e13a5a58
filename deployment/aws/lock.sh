#!/bin/bash
# Regenerates deployment/aws/requirements.lock: every runtime dependency of the project
# (pyproject.toml's [project] dependencies, recursively), pinned to the versions installed
# in the virtualenv this runs in (the ones the tests passed with), each with the sha256 of
# every file PyPI has for it; `pip install --require-hashes` installs nothing else.
# Needs uv (pip install uv); run from anywhere inside the repository, with the project's
# virtualenv active or its python first on PATH.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
python -m pip freeze --exclude-editable | grep -v ' @ ' > "$constraints"
{
    echo "# every runtime dependency, pinned with hashes; regenerate: deployment/aws/lock.sh"
    uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
        --python-platform x86_64-unknown-linux-gnu --constraint "$constraints" \
        --no-annotate --no-header --quiet
} > deployment/aws/requirements.lock
