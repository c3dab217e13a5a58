#!/bin/bash
# Installs one release on an image being built (Amazon Linux 2023, as root): the
# component.yaml beside this file runs it in EC2 Image Builder; by hand, on a builder
# instance whose role may read the release folder, then create the AMI from it.
#   /opt/dynalloc/.venv        Python 3.11, the lock's dependencies (hashes checked), the wheel
#   /opt/dynalloc/deployment/aws   dagster.yaml and workspace.yaml of the release
#   amazon-cloudwatch-agent    started by each run's user data
#   the engine's numba kernels compiled into their cache (engine.precompile)
# usage: bootstrap.sh <release folder: s3://<bucket>/releases/<version> or a local folder>
set -euo pipefail
release="${1:?usage: bootstrap.sh s3://<bucket>/releases/<version>}"
root=/opt/dynalloc
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
case "$release" in
    s3://*) aws s3 cp --recursive --quiet "$release/" "$work/" ;;
    *) cp "$release"/* "$work/" ;;
esac
if command -v dnf >/dev/null; then
    dnf install -y python3.11 amazon-cloudwatch-agent tar gzip
fi
mkdir -p "$root"
tar xzf "$work/deployment-aws.tar.gz" -C "$root"
python3.11 -m venv "$root/.venv"
"$root/.venv/bin/pip" install --quiet --no-deps --require-hashes -r "$work/requirements.lock"
"$root/.venv/bin/pip" install --quiet --no-deps "$work"/dynalloc-*.whl
expected="$(basename "${release%/}")"
baked="$("$root/.venv/bin/python" -c \
    'from dynalloc_dagster.aws.code_version import code_version; print(code_version())')"
if [ "$baked" != "$expected" ]; then
    echo "bootstrap.sh: the installed code is $baked, the release folder says $expected" >&2
    exit 1
fi
"$root/.venv/bin/python" -m pip check
# numba's kernels compiled into the image, so no run worker compiles them at start
"$root/.venv/bin/python" -m engine.precompile
echo "dynalloc $baked installed in $root"
