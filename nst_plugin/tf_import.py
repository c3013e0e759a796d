"""Import TensorFlow without its start-up chatter on the terminal.

TensorFlow's C++ side prints CUDA-probe lines to file descriptor 2 before its log level applies. When
``TF_CPP_MIN_LOG_LEVEL`` is 2 or more (the CLI sets 3 unless you set it or ``NST_DEBUG=1``), that output is
captured while TensorFlow starts and shown only if starting fails.
"""

from __future__ import annotations

import os
import sys
import tempfile

_done = False


def import_tensorflow():
    global _done
    if _done or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "2":
        import tensorflow as tf

        _done = True
        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.zeros((1,)) + 1  # the first op probes the devices, which prints too
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    _done = True
    return tf
