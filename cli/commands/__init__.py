"""One module per `agents` subcommand, each exposing ``register(subparsers)``."""
