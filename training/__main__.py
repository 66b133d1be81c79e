"""``python -m training``: train on IMDB and write the serving artifacts (see training/train.py)."""

import sys

from training.train import main

sys.exit(main())
