"""cxlab._workers: pool workers run BLAS on one thread and die with their parent."""

from __future__ import annotations

import os

import numpy as np
from threadpoolctl import threadpool_info


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def _product(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.random((50_000, 3)) @ rng.random((3, 3))).tobytes()


_IN_CHILD = """
import json
from threadpoolctl import threadpool_info
from cxlab._workers import worker_pool
import test_workers as t
with worker_pool(1) as pool:
    worker, bits = pool.submit(t._blas_threads).result(), pool.submit(t._product, 3).result()
print(json.dumps([t._blas_threads(), worker, bits == t._product(3)]))
"""


def test_pool_workers_run_blas_on_one_thread_and_give_the_same_bits():
    # in a process without the suite's one-thread BLAS setting (conftest), as a user runs
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", _IN_CHILD], env=env, capture_output=True, text=True, check=True
    )
    parent, worker, same = json.loads(out.stdout.strip().splitlines()[-1])
    assert worker and set(worker) == {1}
    assert same  # the product's bits do not depend on the thread count
    if (os.cpu_count() or 1) > 1:
        assert max(parent) > 1  # the parent keeps BLAS's own threads: only workers are limited


def test_a_worker_whose_parent_is_gone_exits():
    # the parent's pid as the worker sees it differs from the one given: the worker leaves
    import subprocess
    import sys

    code = "from cxlab._workers import die_with_parent; die_with_parent(1); print('alive')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 1 and "alive" not in out.stdout
    assert os.getpid() != 1
