"""The `python -m hmfs` subcommands: each parses its flags and calls the library."""
