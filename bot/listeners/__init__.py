"""Slack listeners, one module per kind, each exposing ``register(app, services)``."""
