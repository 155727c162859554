"""``python -m kerasbert`` runs the command line."""

import sys

from kerasbert.cli import main

sys.exit(main())
