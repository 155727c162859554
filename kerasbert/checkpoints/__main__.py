"""``python -m kerasbert.checkpoints PATH``: print what a checkpoint holds."""

import argparse
import sys

from kerasbert.checkpoints.inspect import inspect
from kerasbert.errors import KerasBertError


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kerasbert.checkpoints",
        description="Show a checkpoint's format, model family, variables and parameters.",
    )
    parser.add_argument("path", help="checkpoint file, TensorFlow prefix, or folder")
    args = parser.parse_args(argv)
    try:
        print(inspect(args.path).to_text())
    except KerasBertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
