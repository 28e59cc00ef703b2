"""Finite-N fluctuations of mean-field two-layer networks scale as N^-1/2 (Mei et al. 2018).

Usage: python experiments/meanfield_fluctuations.py [--scale large]
"""

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "meanfield_fluctuations", *sys.argv[1:]]))
