#!/usr/bin/env python
"""Run the pointea benchmark (see pointea/bench/); same as `pointea-bench`."""

from pointea.bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
