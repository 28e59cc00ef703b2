"""Bulk + outliers of a trained classifier's Hessian (Sagun et al. 2017).

Usage: python experiments/hessian_spectrum.py [--scale large]
"""

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "hessian_spectrum", *sys.argv[1:]]))
