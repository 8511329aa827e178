"""The ``smalltrain`` command line (Typer + rich)."""
