#!/usr/bin/env python
"""Run the pointea benchmark (see pointea/bench/run.py); same as `pointea-bench`."""

from pointea.bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
