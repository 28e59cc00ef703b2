"""Catapult phases of a ReLU net vs its NQM vs its linear model (Zhu et al. 2022, arXiv:2205.11787).

Usage: python experiments/catapult_nqm.py [--scale large]"""

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "catapult_nqm", *sys.argv[1:]]))
