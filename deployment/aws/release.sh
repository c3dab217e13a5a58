#!/bin/bash
# Builds a release from a clean checkout and puts it where the image build takes it from:
#   <dest>/<version>/dynalloc-<v>-py3-none-any.whl   the project, CODE_VERSION baked in
#   <dest>/<version>/requirements.lock               every dependency, pinned with hashes
#   <dest>/<version>/deployment-aws.tar.gz           deployment/aws (dagster.yaml, image/)
# The version is <git commit>+lock.<first 12 hex of the lock's sha256>: the launcher tags
# each run with it and a worker whose image has another refuses the run.
# usage: deployment/aws/release.sh s3://<bucket>/releases   (or a local folder)
# prints the version on its last line.
set -euo pipefail
dest="${1:?usage: deployment/aws/release.sh s3://<bucket>/<folder> | <local folder>}"
cd "$(git rev-parse --show-toplevel)"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "release.sh: the checkout has uncommitted changes; a release is a commit" >&2
    exit 1
fi
python - <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    have = version("setuptools")
except PackageNotFoundError:
    have = "(none)"
if have == "(none)" or tuple(int(part) for part in have.split(".")[:2]) < (70, 1):
    sys.exit(f"release.sh: setuptools {have} in {sys.prefix} cannot build the wheel (no "
             "bdist_wheel before 70.1): python -m pip install 'setuptools>=70.1'")
PY
version="$(git rev-parse HEAD)+lock.$(sha256sum deployment/aws/requirements.lock | cut -c1-12)"
build="$(mktemp -d)"
trap 'rm -rf "$build" dynalloc_dagster/CODE_VERSION' EXIT
printf '%s\n' "$version" > dynalloc_dagster/CODE_VERSION
python -m pip wheel --quiet --no-deps --no-build-isolation -w "$build" .
wheel="$(ls "$build"/*.whl)"
python - "$wheel" "$version" <<'PY'
import sys, zipfile
baked = zipfile.ZipFile(sys.argv[1]).read("dynalloc_dagster/CODE_VERSION").decode().strip()
sys.exit(0 if baked == sys.argv[2] else f"release.sh: the wheel has {baked!r}")
PY
cp deployment/aws/requirements.lock "$build/"
tar czf "$build/deployment-aws.tar.gz" deployment/aws
case "$dest" in
    s3://*) aws s3 cp --recursive --quiet "$build" "${dest%/}/$version/" ;;
    *) mkdir -p "$dest/$version" && cp "$build"/* "$dest/$version/" ;;
esac
echo "$version"
