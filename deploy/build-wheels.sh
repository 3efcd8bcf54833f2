#!/bin/sh
# Wheels for the images, built on this host, for engines whose containers reach no
# package index: the Dockerfile installs from deploy/wheels/ when it holds any.
#
# Versions are pinned to what this host's environment has installed (the versions the
# tests ran with). async-timeout is listed because Debian bookworm's Python (3.11.2) needs
# it for redis-py, while a newer host Python does not.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
out=deploy/wheels
"$PYTHON" -m pip freeze --exclude-editable > "$out/constraints.txt"
# Nothing to do when pyproject.toml and the pinned versions are those of the last build.
inputs=$(cat pyproject.toml "$out/constraints.txt" | sha256sum | cut -d' ' -f1)
if [ -f "$out/.inputs" ] && [ "$(cat "$out/.inputs")" = "$inputs" ] && ls "$out"/*.whl >/dev/null 2>&1; then
    rm -f "$out/constraints.txt"
    echo "deploy/wheels/ is up to date"
    exit 0
fi
rm -f "$out"/*.whl "$out/.inputs"
"$PYTHON" -m pip wheel -q --wheel-dir "$out" --constraint "$out/constraints.txt" \
    . rq-dashboard 'setuptools>=68' wheel 'async-timeout>=4.0.3'
rm -f "$out"/agents-*.whl "$out/constraints.txt"
echo "$inputs" > "$out/.inputs"
ls "$out"/*.whl | wc -l | xargs printf '%s wheels in deploy/wheels/\n'
