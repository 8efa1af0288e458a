"""Passes over X on a dask.distributed cluster: ``engine.run(..., client=client)``.

The engine hands each pass that can leave the process to :class:`DaskDistributor` as one
lineage (the source and what was applied to X since, a few bytes to a few MB) and a task per
stretch of row blocks. Each task runs on a worker, which opens the file itself, reads its
rows and folds them into a partial; neighbouring partials merge pairwise on the workers (a
tree-reduce, so the client receives one partial however many tasks ran) and the driver goes
on. In-memory stages (kNN, Leiden, UMAP) and writers stay on the client.
"""

from __future__ import annotations

from . import _engine


def _run_task(task: bytes, lineage: bytes) -> bytes:
    # Module-level functions: workers unpickle them by name from the installed package.
    return _engine.run_task(lineage, task)


def _merge(a: bytes, b: bytes) -> bytes:
    return _engine.merge_results(a, b)


class DaskDistributor:
    """Runs a pass's tasks on ``client``'s workers; the lineage is sent once per pass."""

    def __init__(self, client, tasks_per_thread: int = 2):
        self.client = client
        threads = sum(client.nthreads().values()) or 1
        self.tasks = max(1, tasks_per_thread * threads)

    def __call__(self, lineage: bytes, tasks: list[bytes]) -> list[bytes]:
        shared = self.client.scatter(lineage, broadcast=True, hash=False)
        futures = self.client.map(_run_task, tasks, lineage=shared, pure=False)
        made = list(futures)
        try:
            # Neighbours merge, so each merge keeps the blocks in row order.
            while len(futures) > 1:
                pairs = [futures[i:i + 2] for i in range(0, len(futures), 2)]
                futures = [self.client.submit(_merge, *p, pure=False) if len(p) == 2 else p[0]
                           for p in pairs]
                made.extend(futures)
            return self.client.gather(futures)
        finally:
            self.client.cancel([shared, *made])
