"""``python -m fdebench.runner.worker SPEC.json OUT.json``: one run in a fresh process.

A fresh process per run makes peak memory a per-run figure and keeps a crash, an out-of-memory
kill or a leak from taking the suite down.  The record is written to OUT.json atomically.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .execute import execute


def main(argv: list[str]) -> int:
    spec_path, out_path = map(Path, argv)
    record = execute(json.loads(spec_path.read_text()))
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, default=str))
    os.replace(tmp, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
