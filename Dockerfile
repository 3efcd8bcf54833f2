# The bot and worker image (target `app`, the default) and rq-dashboard (target `dashboard`).
#
# BASE is any Debian bookworm image: the official debian:bookworm-slim by default, or
# agents-base:bookworm (debootstrap + `docker import`, made by
# `agents sandbox build --offline-base`) where no container registry is reachable.
# Python packages come from PyPI, or, where a container reaches no package index, from
# wheels built on the host into deploy/wheels/ (`make compose-wheels`).
ARG BASE=debian:bookworm-slim

# Debian's Python in a virtualenv, and the dependencies: shared by both targets.
FROM ${BASE} AS deps
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/agents/bin:$PATH
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates git python3 python3-venv; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    python3 -m venv /opt/agents; \
    useradd --create-home --uid 10001 --shell /usr/sbin/nologin agents

WORKDIR /app
# Dependencies first, from pyproject.toml alone, so a change to the code reuses this layer.
COPY deploy/wheels/ /wheels/
COPY pyproject.toml ./
RUN set -eux; \
    python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt; \
    if ls /wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels; fi; \
    pip install --no-cache-dir "$@" -r /tmp/requirements.txt

# rq-dashboard reads the queue; it needs the dependencies, not our code.
FROM deps AS dashboard
RUN set -eux; \
    if ls /wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels; fi; \
    pip install --no-cache-dir "$@" rq-dashboard
USER agents
CMD ["rq-dashboard", "--bind", "0.0.0.0", "--port", "9181"]

# The bot and the worker (the default target).
FROM deps AS app
COPY README.md ./
COPY core core
COPY jobs jobs
COPY sandboxes sandboxes
COPY bot bot
COPY cli cli
RUN set -eux; \
    if ls /wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels; fi; \
    pip install --no-cache-dir --no-deps "$@" .; \
    agents --help >/dev/null
# Recorded transcripts and the sample repository: the replay model and the demo use them.
COPY examples examples
COPY deploy/entrypoint.py /usr/local/bin/agents-entrypoint
# Starts as root only to join the Docker socket's group (whatever its gid on this host),
# then runs the command as the unprivileged `agents` user.
ENTRYPOINT ["python3", "/usr/local/bin/agents-entrypoint"]
CMD ["agents", "--help"]

