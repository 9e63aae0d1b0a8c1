"""Token Explorer: `uv run main.py [--input FILE] [--model ID_OR_DIR] [--bf16] [--layer_prob]`."""

import sys

from explorer.cli import main

if __name__ == "__main__":
    sys.exit(main())
