"""Token Explorer: `uv run main.py [flags]` opens the app; `uv run main.py trace|tree ...` runs a
command headless. `uv run main.py --help` lists the flags and the commands."""

import sys

from explorer.cli import main

if __name__ == "__main__":
    sys.exit(main())
