"""Run the rnnkit benchmark suite: ``python benchmarks/run.py [--quick] [--only SHAPE ...]``.

The suite itself lives in ``rnnkit.bench`` so that ``rnnkit bench`` runs the same code.
"""

import sys

from rnnkit.bench import main

sys.exit(main())
