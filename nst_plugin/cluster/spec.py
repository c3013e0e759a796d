"""``--cluster`` and ``--workers``, checked before any work; no dask import."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from ..errors import UserError

LOCAL = "local"
DEFAULT_TIMEOUT = 10.0  # seconds to reach a scheduler (NST_CLUSTER_TIMEOUT)
INSTALL_HINT = "pip install 'nst-plugin[dask]'"


@dataclass(frozen=True)
class ClusterSpec:
    """Where a job's units run: ``address`` ``"local"`` (a LocalCluster on this machine with ``workers``
    worker processes) or a scheduler's address (``tcp://10.0.0.5:8786``)."""

    address: str
    workers: int | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def local(self) -> bool:
        return self.address == LOCAL


def parse_cluster(cluster: str | None, workers: int | None = None) -> ClusterSpec | None:
    """The :class:`ClusterSpec` of ``--cluster``/``--workers`` (None: one process), or one clear
    :class:`UserError`."""
    if cluster is None:
        if workers is not None:
            raise UserError("--workers goes with --cluster local (an existing cluster has its own workers)")
        return None
    cluster = cluster.strip()
    if not cluster:
        raise UserError("--cluster needs 'local' or a scheduler address such as tcp://10.0.0.5:8786")
    if workers is not None and cluster != LOCAL:
        raise UserError("--workers goes with --cluster local (an existing cluster has its own workers)")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if cluster != LOCAL and ":" not in cluster:
        raise UserError(f"--cluster {cluster!r}: give 'local' or a scheduler address with its port, "
                        "such as tcp://10.0.0.5:8786")
    if importlib.util.find_spec("distributed") is None:
        raise UserError(f"--cluster needs dask.distributed, which is not installed: {INSTALL_HINT}")
    raw = os.environ.get("NST_CLUSTER_TIMEOUT", "")
    try:
        timeout = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise UserError(f"NST_CLUSTER_TIMEOUT must be a number of seconds, got {raw!r}") from None
    return ClusterSpec(cluster, workers, timeout)
