"""Keras ``.weights.h5`` files, as written by ``model.save_weights``.

Keras names the groups in these files after layer classes and their order, not after the
checkpoint variables, so a ``.weights.h5`` is loaded by Keras itself
(``model.load_weights``) into a model of the same architecture. This class lists what the
file holds (for ``inspect`` and for error messages) and checks that it is an HDF5 file.
"""

import warnings

import h5py

from kerasbert.checkpoints.base import Checkpoint, Entry
from kerasbert.checkpoints.loading import LoadReport
from kerasbert.errors import CheckpointError, WeightLoadingError


class KerasWeightsCheckpoint(Checkpoint):
    """A Keras ``.weights.h5`` file; its names are the file's HDF5 dataset paths.

    Args:
        path: the ``.weights.h5`` file.

    Example:

    >>> import os, tempfile, kerasbert
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    ...      "num_attention_heads": 1, "intermediate_size": 8})
    >>> path = os.path.join(tempfile.mkdtemp(), "bert.weights.h5")
    >>> model.save_weights(path)
    >>> len(KerasWeightsCheckpoint(path)) == len(model.weights)
    True
    """

    format = "keras"
    names_are_canonical = False  # HDF5 paths after Keras's layer classes and their order

    def __init__(self, path):
        super().__init__(path)
        try:
            with h5py.File(path, "r") as f:
                if "layers" not in f and "vars" not in f:
                    raise CheckpointError(
                        f"{path!r} is an HDF5 file but not a Keras .weights.h5 file (no "
                        "'layers' group); HF tf_model.h5 files are a different format."
                    )
                f.visititems(self._collect)
        except OSError as e:
            raise CheckpointError(
                f"{path!r} is not a readable HDF5 file ({e}); it may be truncated or corrupt."
            ) from None

    def _collect(self, name, obj):
        # A compiled model's save_weights also stores its optimizer's state ("optimizer/..."):
        # not model weights, and not needed to load them.
        if isinstance(obj, h5py.Dataset) and not name.startswith("optimizer/"):
            self._entries[name] = Entry(name, tuple(obj.shape), obj.dtype.name)

    def _read(self, entry):
        with h5py.File(self.path, "r") as f:
            return f[entry.source_name][()]

    def load_into(self, model, mapping=None, **options):
        """Load into ``model`` with Keras itself, refusing partial loads.

        Keras matches a ``.weights.h5`` to a model by architecture, not by name, so
        ``mapping`` and the name-based options are not used. Keras skips groups it cannot
        match with only a warning, leaving those layers random; here the file's variable
        shapes must equal the model's, and any such warning is an error.

        Returns:
            A :class:`kerasbert.checkpoints.LoadReport`.
        """
        advice = (
            "A .weights.h5 file loads only into the architecture that saved it: build the "
            "model with the same config and heads (with_pool / with_nsp / with_mlm)."
        )
        stored = sorted(self.shape(name) for name in self.names())
        expected = sorted(tuple(v.shape) for v in model.weights)
        if stored != expected:
            raise WeightLoadingError(
                f"Keras weights file {self.path!r} holds {len(stored)} variables, the "
                f"model has {len(expected)}, or their shapes differ. {advice}"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)
                model.load_weights(self.path)
        except (ValueError, KeyError, OSError, UserWarning) as e:
            raise WeightLoadingError(
                f"Keras weights file {self.path!r} does not fit this model ({e}). {advice}"
            ) from None
        return LoadReport(loaded=[(v.path, v.path) for v in model.weights])
