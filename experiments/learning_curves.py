"""Eigenlearning predicts kernel regression learning curves (Simon et al. 2021). Usage: python experiments/learning_curves.py [--scale large]"""  # noqa: E501

import sys

from nnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", "learning_curves", *sys.argv[1:]]))
