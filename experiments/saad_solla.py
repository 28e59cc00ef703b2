"""Saad-Solla ODEs vs online SGD of a soft committee machine (Saad & Solla 1995).

Usage: python experiments/saad_solla.py [--scale large]
"""

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "saad_solla", *sys.argv[1:]]))
