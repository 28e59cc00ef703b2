"""uv-model catapult phase boundaries 2/λ0 and 4/λ0 (Lewkowycz et al. 2020, arXiv:2003.02218).

Usage: python experiments/catapult_uv.py [--scale large]"""

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "catapult_uv", *sys.argv[1:]]))
