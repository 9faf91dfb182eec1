"""Entry point for `python -m hmfs`."""

from hmfs.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
