"""One command on Ray: connect (a local cluster for ``auto``, else the cluster at an address), route extraction
and experiment grids to it for the duration, and stop a cluster this session started."""
from __future__ import annotations

import socket
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


def reachable(address: str, *, timeout: float = 5.0) -> None:
    """A one-line error unless the head at ``HOST:PORT`` (or ``ray://HOST:PORT``) accepts a TCP connection within
    ``timeout`` seconds: ``ray.init`` itself retries an unreachable address for minutes."""
    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = target.rpartition(":")
    host = host.strip("[]")                      # [IPv6]:PORT
    if not host or not port.isdigit():
        raise UserError(f"--ray {address}: expected auto, HOST:PORT of a Ray cluster's head or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        why = "no answer within {:g} s".format(timeout) if isinstance(exc, TimeoutError) else (exc.strerror or exc)
        raise UserError(f"--ray {address}: cannot reach the Ray cluster ({why})") from None


@contextmanager
def session(address: str | None, *, workers: int | None = None, num_cpus: int | None = None):
    """Run the block on Ray (``address`` None: in this process, nothing changes). ``workers`` caps the tasks
    in flight (default: :func:`cluster_workers`); ``num_cpus`` sizes a local cluster this call starts."""
    if address is None:
        yield None
        return
    if address != "auto":
        reachable(address)
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
