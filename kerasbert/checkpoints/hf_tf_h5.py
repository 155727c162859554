"""Reader of HF transformers' TensorFlow weights, ``tf_model.h5`` (read with h5py)."""

import re

import h5py

from kerasbert.checkpoints.base import Checkpoint, Entry
from kerasbert.errors import CheckpointError

# HF's Keras models store e.g.
# "bert/tf_bert_for_pre_training/bert/encoder/layer_._0/attention/self/query/kernel:0": an h5
# group, the Keras model's scope (tf_*), list items as "layer_._N", and embedding layers'
# own weight names. These conventions are the same for every HF TF model.
_HF_KERAS_CONVENTIONS = [
    (re.compile(r":\d+$"), ""),
    (re.compile(r"^(?:[^/]+/)*?tf_\w+?/"), ""),
    (re.compile(r"_\._(\d+)(/|$)"), r"_\1\2"),
    (re.compile(r"_embeddings/(weight|embeddings)$"), "_embeddings"),
]


def hf_keras_name(path):
    """An h5 dataset path of ``tf_model.h5`` without HF Keras's scopes and suffixes.

    Example:

    >>> hf_keras_name("bert/tf_bert_model/bert/encoder/layer_._3/output/dense/kernel:0")
    'bert/encoder/layer_3/output/dense/kernel'
    """
    for pattern, replacement in _HF_KERAS_CONVENTIONS:
        path = pattern.sub(replacement, path)
    return path


class HFTensorFlowCheckpoint(Checkpoint):
    """HF ``tf_model.h5`` weights under canonical names.

    Args:
        path: the ``tf_model.h5`` file.

    Example::

        ckpt = HFTensorFlowCheckpoint("bert-base-chinese/tf_model.h5")
        ckpt.read("bert/encoder/layer_0/attention/self/query/kernel").shape  # (768, 768)
    """

    format = "hf_tf"
    naming = "hf_tf"

    def __init__(self, path):
        super().__init__(path)
        sources = []

        def collect(name, obj):
            if isinstance(obj, h5py.Dataset):
                sources.append(Entry(name, tuple(obj.shape), obj.dtype.name))

        try:
            self._file = h5py.File(path, "r")
            self._file.visititems(collect)
        except OSError as e:
            raise CheckpointError(
                f"{path!r} is not a readable HDF5 file ({e}); it may be truncated or corrupt."
            ) from None
        self._add_translated(sources, normalize=hf_keras_name)

    def _read(self, entry):
        return self._file[entry.source_name][()]

    def close(self):
        self._file.close()
