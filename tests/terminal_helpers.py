"""Running the real `vidpipe` process on a pseudo-terminal, for tests of what a person sees."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time


def run_on_terminal(
    argv: list[str],
    env: dict[str, str],
    *,
    columns: int = 80,
    stdout_pipe: bool = False,
    stdin_terminal: bool = False,
    answer: tuple[bytes, bytes] | None = None,
    timeout: float = 60.0,
) -> tuple[int, bytes, str]:
    """Run `argv` with stderr (and stdout unless `stdout_pipe`, stdin with `stdin_terminal`)
    on a pseudo-terminal `columns` wide. `answer` = (prompt, reply): once the terminal shows
    `prompt`, type `reply`. Returns the exit code, every byte the terminal was sent (escape
    sequences and all) and the piped stdout."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        argv,
        stdin=slave if stdin_terminal or answer else subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout_pipe else slave,
        stderr=slave,
        env={**env, "COLUMNS": str(columns), "TERM": "xterm-256color"},
    )
    os.close(slave)
    shown = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
            if answer is not None and answer[0] in shown:
                os.write(master, answer[1])
                answer = None
        elif proc.poll() is not None:
            break
    piped = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=timeout)
    os.close(master)
    return code, bytes(shown), piped
