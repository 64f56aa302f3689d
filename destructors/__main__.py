"""Entry point of ``python -m destructors``: runs :func:`destructors.cli.main`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
