"""Soak: a scenario in real time while the broker is killed, the store locked, the platform frozen and hostile
payloads published, over and over; prints sampled/stored/lost/duplicates/rejected and exits 1 on any loss.

Run:  .venv/bin/python benchmarks/soak.py [--minutes 30] [--period-s 20]   (from the repo root; loopback only)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridloop.study.soak import main

if __name__ == "__main__":
    raise SystemExit(main())
