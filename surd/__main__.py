"""`python -m surd` is the `surd` command."""

from surd.cli import entry

entry()
