"""``python -m dhtgraph`` runs the ``dhtgraph`` command."""

import sys

from .cli import main

sys.exit(main())
