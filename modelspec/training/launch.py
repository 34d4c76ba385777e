"""``processes: N`` on this machine: start N worker processes as one ``keras.distribution`` job, and watch them.

Each worker is the same ``modelspec train`` command with Keras's
``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (a coordinator on localhost, at a free
port), ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and
``KERAS_DISTRIBUTION_PROCESS_ID`` set: exactly what a user sets to run the
job on several machines. Process 0 speaks on this terminal and writes the
outputs (atomically, after training); the others are quiet. When one worker
fails, the others would wait on it in a collective until a timeout: they are
stopped at once (each in its own session, so nothing is left behind), and
the job ends with the failing worker's message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from ..errors import Origin, SpecError

POLL_SECONDS = 0.1
"""How often the workers are looked at."""
STOP_SECONDS = 10.0
"""How long a worker asked to stop is given before it is killed."""


def free_port() -> int:
    """A TCP port free on localhost now (the coordinator binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_environment(process: int, processes: int, port: int) -> dict[str, str]:
    """The environment of worker ``process`` of a job on this machine."""
    return {
        **os.environ,
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": str(processes),
        "KERAS_DISTRIBUTION_PROCESS_ID": str(process),
    }


def launch(arguments: Sequence[str], processes: int, at: Origin) -> int:
    """Run ``modelspec ARGUMENTS`` as ``processes`` workers of one job; the exit status of the job.

    Args:
        arguments: The command line of each worker, after ``modelspec``.
        processes: How many workers.
        at: Where the processes were asked for (``train.distribution.processes``).

    Returns:
        0 when every worker succeeded; else the status of the first that failed
        (1 for a worker killed by a signal).

    Raises:
        SpecError: A worker failed (``worker-failed``), with the tail of what it said.
    """
    port = free_port()
    command = [sys.executable, "-m", "modelspec", *arguments]
    workers: list[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(1, processes)]
        try:
            for i in range(processes):
                quiet = i > 0
                workers.append(
                    subprocess.Popen(
                        command,
                        env=worker_environment(i, processes, port),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL if quiet else None,
                        stderr=logs[i - 1] if quiet else None,
                        start_new_session=True,  # stopped as a group, never left behind
                    )
                )
            failed = _watch(workers)
        finally:
            _stop(workers)
        if failed is None:
            return 0
        status = workers[failed].returncode
        if failed == 0:
            return status if status > 0 else 1  # process 0 said why on this terminal
        logs[failed - 1].seek(0)
        said = logs[failed - 1].read().decode("utf-8", "replace")
    how = f"exit status {status}" if status >= 0 else f"signal {signal.Signals(-status).name}"
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else "")
    raise SpecError(
        [
            at.problem(
                "worker-failed",
                f"worker process {failed} of {processes} failed ({how}): the job stopped, nothing was written"
                + (f"; it said: {last[:300]}" if last else ""),
            )
        ]
    )


def _watch(workers: list[subprocess.Popen]) -> int | None:
    """Wait for every worker; the index of the first that fails, or None when all succeed."""
    while True:
        running = False
        for i, worker in enumerate(workers):
            status = worker.poll()
            if status is None:
                running = True
            elif status != 0:
                return i
        if not running:
            return None
        time.sleep(POLL_SECONDS)


def _stop(workers: list[subprocess.Popen]) -> None:
    """Stop the workers still running: SIGTERM to each one's session, SIGKILL after :data:`STOP_SECONDS`."""
    alive = [w for w in workers if w.poll() is None]
    for worker in alive:
        _signal(worker, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for worker in alive:
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(worker, signal.SIGKILL)
            worker.wait()


def _signal(worker: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(worker.pid, sig)
