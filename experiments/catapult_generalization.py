"""Test loss vs learning rate for a ReLU net, NQM, linear model (Zhu et al. 2022, arXiv:2205.11787).

Usage: python experiments/catapult_generalization.py [--scale large]"""

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "catapult_generalization", *sys.argv[1:]]))
