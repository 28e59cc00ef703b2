"""Edge of stability: the GD sharpness hovers at 2/eta (Cohen et al. 2021).

Usage: python experiments/edge_of_stability.py [--scale large]
"""

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "edge_of_stability", *sys.argv[1:]]))
