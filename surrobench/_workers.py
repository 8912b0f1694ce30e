"""Worker processes that end with the process that started them."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["die_with"]

_watching = False


def die_with(parent_pid: int) -> None:
    """In a worker process started by ``parent_pid`` (joblib's loky or multiprocessing back-end):
    exit as soon as that parent is gone (killed, even with SIGKILL) instead of running on as an
    orphan. Nothing happens in the parent itself, nor in a process it did not start (a dask or
    ray worker); one watcher thread per process, checking twice a second."""
    global _watching
    if _watching or os.getpid() == parent_pid or os.getppid() != parent_pid:
        return
    _watching = True

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="surrobench-parent-watch", daemon=True).start()
