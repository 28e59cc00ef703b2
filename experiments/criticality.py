"""E[z²] vs depth on/off criticality (Roberts, Yaida & Hanin 2021).

Usage: python experiments/criticality.py [--scale large]"""

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "criticality", *sys.argv[1:]]))
