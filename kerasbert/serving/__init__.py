"""``kerasbert serve``: a bert-as-service compatible server (the real ``bert-serving-client``
talks to it), with requests from all clients merged into length-bucketed batches.

* :mod:`~kerasbert.serving.protocol`: the 1.10 wire format (frames, replies, config);
* :mod:`~kerasbert.serving.features`: bert-as-service's text -> model input rules;
* :mod:`~kerasbert.serving.engine`: the model's pooled vectors, in a bounded set of shapes;
* :mod:`~kerasbert.serving.batcher`: dynamic batching across requests;
* :mod:`~kerasbert.serving.server`: the sockets, HTTP, signals;
* :mod:`~kerasbert.serving.options`: the command line's options.

Needs ``pyzmq`` (``pip install 'kerasbert[serve]'``). How it differs from the original
server, and why: docs/serving.md.
"""

from kerasbert.serving.options import ServeOptions


def __getattr__(name):
    if name == "BertServer":  # imports pyzmq and Keras only when asked for
        from kerasbert.serving.server import BertServer

        return BertServer
    raise AttributeError(f"module 'kerasbert.serving' has no attribute {name!r}")


__all__ = ["BertServer", "ServeOptions"]
