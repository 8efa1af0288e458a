"""Passes over X on a dask.distributed cluster: ``engine.run(..., client=client)``.

The engine hands each pass that can leave the process to :class:`DaskDistributor` as one
lineage (the source and what was applied to X since, a few bytes to a few MB) and a task per
stretch of row blocks. Each task runs on a worker, which opens the file itself, reads its
rows and folds them into a partial; the driver merges the partials in order and goes on.
In-memory stages (kNN, Leiden, UMAP) and writers stay on the client.
"""

from __future__ import annotations

from . import _engine


def _run_task(task: bytes, lineage: bytes) -> bytes:
    # A module-level function: workers unpickle it by name from the installed package.
    return _engine.run_task(lineage, task)


class DaskDistributor:
    """Runs a pass's tasks on ``client``'s workers; the lineage is sent once per pass."""

    def __init__(self, client, tasks_per_thread: int = 2):
        self.client = client
        threads = sum(client.nthreads().values()) or 1
        self.tasks = max(1, tasks_per_thread * threads)

    def __call__(self, lineage: bytes, tasks: list[bytes]) -> list[bytes]:
        shared = self.client.scatter(lineage, broadcast=True, hash=False)
        futures = self.client.map(_run_task, tasks, lineage=shared, pure=False)
        try:
            return self.client.gather(futures)
        finally:
            self.client.cancel([shared, *futures])
