"""Empirical NTK converges to the analytic NTK as width^-1/2 (Jacot et al. 2018). Usage: python experiments/ntk_convergence.py [--scale large]"""  # noqa: E501

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "ntk_convergence", *sys.argv[1:]]))
