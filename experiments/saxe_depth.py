"""Learning time vs depth of deep linear networks: theory vs simulation (Saxe et al. 2013).

Usage: python experiments/saxe_depth.py [--scale large]
"""

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "saxe_depth", *sys.argv[1:]]))
