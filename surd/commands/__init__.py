"""The `surd` commands, one module per concern; each adds its commands to the app with ``register(app)``.

Shared options and result reporting live in `surd.commands.common`; no command module imports `surd.cli`.
"""
