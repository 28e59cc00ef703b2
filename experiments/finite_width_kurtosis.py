"""Finite-width kurtosis vs depth and width (Roberts, Yaida & Hanin 2021; Antognini 2019).

Usage: python experiments/finite_width_kurtosis.py [--scale large]"""

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "finite_width_kurtosis", *sys.argv[1:]]))
