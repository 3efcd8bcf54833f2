#!/bin/sh
# The files the images install, downloaded here from uv.lock, for engines whose
# containers reach no package index: the Dockerfile installs from deploy/wheels/ when it
# holds any, still checking every file against the lock's hashes.
#
# The list is every package any image installs (the runtime, rq-dashboard, the build
# backend, and uv, which exports the requirements inside the build), with environment
# markers evaluated for the images' Debian Python (3.11.2), never the host's: the images
# need async-timeout and the pre-3.12 numpy, a newer host Python would not.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
out=deploy/wheels
list=$(mktemp)
trap 'rm -f "$list"' EXIT
{
    "$PYTHON" -m uv export --frozen --no-emit-project --no-header --quiet \
        --no-dev --group dashboard --group build
    "$PYTHON" scripts/lockfile.py pin uv
} | "$PYTHON" scripts/lockfile.py for-image > "$list"
# Nothing to do when the lock is the one of the last download.
inputs=$(sha256sum uv.lock | cut -d' ' -f1)
if [ -f "$out/.inputs" ] && [ "$(cat "$out/.inputs")" = "$inputs" ] && ls "$out"/*.whl >/dev/null 2>&1; then
    echo "deploy/wheels/ is up to date"
    exit 0
fi
rm -f "$out"/*.whl "$out/.inputs"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --require-hashes \
    --dest "$out" -r "$list"
echo "$inputs" > "$out/.inputs"
ls "$out"/*.whl | wc -l | xargs printf '%s wheels in deploy/wheels/\n'
