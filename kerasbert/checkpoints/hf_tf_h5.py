"""Reader of HF transformers' TensorFlow weights, ``tf_model.h5`` (read with h5py)."""

import h5py

from kerasbert.checkpoints.base import Checkpoint, Entry
from kerasbert.checkpoints.names import hf_tf_bert
from kerasbert.errors import CheckpointError


class HFTensorFlowCheckpoint(Checkpoint):
    """HF ``tf_model.h5`` weights under canonical names.

    Args:
        path: the ``tf_model.h5`` file.
        translate: source-name -> (canonical name, transpose) function.

    Example::

        ckpt = HFTensorFlowCheckpoint("bert-base-chinese/tf_model.h5")
        ckpt.read("bert/encoder/layer_0/attention/self/query/kernel").shape  # (768, 768)
    """

    format = "hf_tf"

    def __init__(self, path, translate=hf_tf_bert):
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
        self._add_translated(sources, translate)

    def _read(self, entry):
        return self._file[entry.source_name][()]

    def close(self):
        self._file.close()
