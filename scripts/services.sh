#!/usr/bin/env bash
# Install (when missing) and start what the test suite needs: Redis on loopback, a
# Docker engine, debootstrap (for the offline base image), Chromium (for the browser
# tests) and npm (it resolves the Node example's lock file once, for the npm registry's
# local stand-in). Safe to run again: it skips whatever is already installed or answering.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v git >/dev/null || missing+=(git)
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing ${missing[*]}; install them (as root: apt-get install -y ${missing[*]}) and rerun"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

wait_for() {  # wait_for NAME SECONDS CMD...
  local name=$1 limit=$2; shift 2
  for ((i = 0; i < limit * 2; i++)); do
    if "$@" >/dev/null 2>&1; then log "$name is up"; return 0; fi
    sleep 0.5
  done
  log "$name did not answer within ${limit}s"
  return 1
}

if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "redis already answering on 127.0.0.1:6379"
else
  log "starting redis on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" --appendonly no \
    --logfile /tmp/agents-redis.log
  wait_for redis 30 redis-cli -h 127.0.0.1 -p 6379 ping
fi

if docker info >/dev/null 2>&1; then
  log "docker engine already answering"
else
  if [[ $(id -u) -ne 0 ]]; then
    log "no Docker engine answers and starting dockerd needs root; start it (or set DOCKER_HOST)"
    exit 1
  fi
  log "starting dockerd (log: /tmp/agents-dockerd.log)"
  nohup dockerd >/tmp/agents-dockerd.log 2>&1 &
  wait_for dockerd 90 docker info || { tail -20 /tmp/agents-dockerd.log; exit 1; }
fi
