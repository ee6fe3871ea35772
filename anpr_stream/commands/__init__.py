"""Subcommands of the `anpr-stream` CLI: each module offers `register(subparsers)`."""
