"""Wide nets train like their linearisation (Lee et al. 2019). Usage: python experiments/linearized_training.py [--scale large]"""  # noqa: E501

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "linearized_training", *sys.argv[1:]]))
