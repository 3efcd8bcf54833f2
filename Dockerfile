# The bot and worker image (target `app`, the default) and rq-dashboard (target `dashboard`).
#
# BASE is any Debian bookworm image: the official debian:bookworm-slim by default, or
# agents-base:bookworm (debootstrap + `docker import`, made by
# `agents sandbox build --offline-base`) where no container registry is reachable.
# Python packages are exactly uv.lock's, from PyPI or, where a container reaches no
# package index, from the files `make compose-wheels` downloaded into deploy/wheels/.
ARG BASE=debian:bookworm-slim

# Debian's Python in a virtualenv: shared by every target. The virtualenv keeps pip and
# nothing else (Debian seeds an old setuptools), so it holds exactly what the lock says.
FROM ${BASE} AS python
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
    /opt/agents/bin/pip uninstall -q -y setuptools; \
    useradd --create-home --uid 10001 --shell /usr/sbin/nologin agents
# Where no package index is reachable, pip takes the files deploy/build-wheels.sh
# downloaded; either way every file is checked against uv.lock's hashes (the exported
# requirements carry them, which puts pip in hash-checking mode).
COPY deploy/wheels/ /wheels/
RUN if ls /wheels/*.whl >/dev/null 2>&1; then \
        printf '[install]\nno-index = true\nfind-links = /wheels\n' > /etc/pip.conf; \
    fi

# What each image installs, exported from the one lock by uv (itself installed from the
# lock by hash). Only these requirement files leave this stage.
FROM python AS requirements
WORKDIR /lock
COPY pyproject.toml uv.lock ./
COPY scripts/lockfile.py ./
RUN set -eux; \
    python3 lockfile.py pin uv > uv.txt; \
    python3 -m venv /opt/uv; \
    /opt/uv/bin/pip install --no-cache-dir --no-deps -r uv.txt; \
    export="/opt/uv/bin/uv export --frozen --no-emit-project --no-header --quiet"; \
    $export --no-dev -o app.txt; \
    $export --no-dev --group dashboard -o dashboard.txt; \
    $export --only-group build -o build.txt

FROM python AS deps
WORKDIR /app
COPY --from=requirements /lock/app.txt /lock/build.txt /tmp/
RUN pip install --no-cache-dir -r /tmp/app.txt -r /tmp/build.txt

# rq-dashboard reads the queue; it needs the dependencies, not our code.
FROM python AS dashboard
COPY --from=requirements /lock/dashboard.txt /tmp/
RUN pip install --no-cache-dir -r /tmp/dashboard.txt
USER agents
CMD ["rq-dashboard", "--bind", "0.0.0.0", "--port", "9181"]

# The bot and the worker (the default target).
FROM deps AS app
COPY pyproject.toml README.md ./
COPY process process
COPY runs runs
COPY jobs jobs
COPY sandboxes sandboxes
COPY bot bot
COPY cli cli
COPY fakes fakes
RUN set -eux; \
    pip install --no-cache-dir --no-deps --no-build-isolation .; \
    agents --help >/dev/null
# Recorded transcripts and the sample repository: the replay model and the demo use them.
COPY examples examples
COPY deploy/entrypoint.py /usr/local/bin/agents-entrypoint
# Starts as root only to join the Docker socket's group (whatever its gid on this host),
# then runs the command as the unprivileged `agents` user.
ENTRYPOINT ["python3", "/usr/local/bin/agents-entrypoint"]
CMD ["agents", "--help"]

