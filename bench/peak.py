"""Run a command and report its peak RSS: ``python -m bench.peak OUT -- CMD …``.

Linux carries a process's peak RSS across ``fork`` and ``exec``: a child
forked from the benchmark (which holds the corpus in memory) would report
the benchmark's size as its own peak. This launcher is small (standard
library only), so the command it starts inherits nothing worth counting;
the command's peak is read from ``os.wait4`` and written as JSON to OUT.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m bench.peak OUT -- COMMAND [ARG …]", file=sys.stderr)
        return 2
    out, command = argv[0], argv[2:]
    began = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    result = {"maxrss_bytes": usage.ru_maxrss * 1024, "exit_code": child.returncode,
              "seconds": time.perf_counter() - began}
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
