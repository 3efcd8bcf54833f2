# The bot and worker image. BASE defaults to the official Python image; point it at an
# internal mirror (or a locally imported base) where no public registry is reachable.
ARG BASE=python:3.11-slim
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY jobs jobs
COPY sandboxes sandboxes
COPY bot bot
COPY cli cli
RUN pip install --no-cache-dir .
RUN useradd --create-home agents
USER agents
CMD ["agents", "--help"]
