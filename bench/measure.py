"""Run one command and report its wall time and peak RSS, measured for that command alone.

    python -S bench/measure.py RESULT.json CMD [ARG...]

Why a wrapper: Linux carries a process's peak RSS across exec, so a command spawned straight
from the (large) benchmark process would report the benchmark's own peak. Spawned from this
small process, `os.wait4` gives the command's peak (ru_maxrss, KiB) and nothing else's.
stdin/stdout/stderr are passed through.
"""

import json
import os
import subprocess
import sys
import time


def main() -> int:
    result_path, cmd = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    with open(result_path, "w") as fh:
        json.dump({"wall": wall, "maxrss_kib": usage.ru_maxrss, "rc": rc}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
