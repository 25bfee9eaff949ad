"""One command on Ray: connect (a local cluster for ``auto``, else the cluster at an address), route extraction
and experiment grids to it for the duration, and stop a cluster this session started."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from probekit.core.errors import UserError

INSTALL = 'pip install "probekit[ray]"'
#: the active session's worker count (None: no session, work runs in this process)
WORKERS: ContextVar = ContextVar("probekit_ray_workers", default=None)


def ray_module():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--ray needs Ray, which is not installed ({INSTALL})") from None
    return ray


def cluster_workers(ray) -> int:
    """One worker per GPU where the cluster has GPUs, else one per CPU."""
    res = ray.cluster_resources()
    return max(int(res.get("GPU", 0)) or int(res.get("CPU", 1)), 1)


@contextmanager
def session(address: str | None, *, workers: int | None = None, num_cpus: int | None = None):
    """Run the block on Ray (``address`` None: in this process, nothing changes). ``workers`` caps the tasks
    in flight (default: :func:`cluster_workers`); ``num_cpus`` sizes a local cluster this call starts."""
    if address is None:
        yield None
        return
    ray = ray_module()
    from probekit.core.extraction import SHARDED
    from probekit.core.distributed.sharded_extraction import ShardedExtraction

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=None if address == "auto" else address, num_cpus=num_cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UserError(f"--ray {address}: cannot reach the Ray cluster ({exc})") from None
    n = int(workers) if workers else cluster_workers(ray)
    tokens = WORKERS.set(n), SHARDED.set(ShardedExtraction(n))
    try:
        yield n
    finally:
        SHARDED.reset(tokens[1])
        WORKERS.reset(tokens[0])
        if started:
            ray.shutdown()
