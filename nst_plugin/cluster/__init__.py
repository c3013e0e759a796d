"""One ``nst video`` job over many cores and machines, on ``dask.distributed`` (``pip install nst-plugin[dask]``).

Mode: **frames are shipped**. The client (the machine that runs ``nst video``) reads the source, sends each
unit's frames and the style images to the workers inside the unit's task, and gets every stylized frame
back as it finishes; only the client writes the output folder (frames, artifacts, manifest). Workers need
nst-plugin (the same version, checked at start) and its plugins, nothing else: no shared folder.

Units of work:

* ``lbfgs`` (a shot is a chain): one unit per shot, the shot's frames at the working size, run on a worker
  by the same ``nst_stylize_sequence`` a single process runs; a shot that an earlier run half finished is
  resumed from its last finished frame.
* ``keyframes``: one unit per keyframe (the frame engine), one per shot's training (each starts from the
  previous shot's network, as in one process), then one per chunk of frames through its shot's network;
  the client carries each shot's guide pattern and its keyframes' texture along its frames (a cheap flow
  pass, as one process does) and ships them with each frame.

A worker keeps one plugin host, its backbone and its style targets for every unit it runs
(:mod:`.worker`). A worker killed mid-unit: dask runs the unit again elsewhere; the client writes each
frame once, atomically. Modules: :mod:`.spec` (``--cluster``/``--workers``, no dask import), :mod:`.client`
(connecting, checking the workers, the ``stylize_sequence`` that sends units out), :mod:`.units` (the units
and the messages they send back), :mod:`.worker` (what runs on a worker), :mod:`.local` (the same units run
in one process, without dask).
"""

from .spec import ClusterSpec, parse_cluster

__all__ = ["ClusterSpec", "parse_cluster", "connect"]


def connect(spec, **kwargs):
    """A :class:`~nst_plugin.cluster.client.Connection` to the cluster ``spec`` names (imports dask)."""
    from .client import connect as _connect

    return _connect(spec, **kwargs)
