"""Keras ``.weights.h5`` files, as written by ``model.save_weights``.

Keras names the groups in these files after layer classes and their order, not after the
checkpoint variables, so a ``.weights.h5`` is loaded by Keras itself
(``model.load_weights``) into a model of the same architecture. This class lists what the
file holds (for ``inspect`` and for error messages) and checks that it is an HDF5 file
whose every dataset is stored in the file itself
(:func:`kerasbert.checkpoints.hf_tf_h5.open_hdf5`), before Keras or kerasbert reads any.
"""

import collections
import os
import types
import warnings

import ml_dtypes
import numpy as np

from kerasbert.checkpoints.base import Checkpoint
from kerasbert.checkpoints.hf_tf_h5 import (
    dataset_checksums,
    dataset_entry,
    open_hdf5,
    read_dataset,
)
from kerasbert.checkpoints.loading import LoadReport, _check_values
from kerasbert.errors import CheckpointError, KerasBertError, WeightLoadingError

_SHOWN = 3  # mismatching variables named in a message, per side


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
        path = os.fspath(path)
        super().__init__(path)
        self._layer_of = {}  # dataset name -> the Keras layer name its group records
        self._file, datasets = open_hdf5(path)
        try:
            if "layers" not in self._file and "vars" not in self._file:
                raise CheckpointError(
                    f"{path!r} is an HDF5 file but not a Keras .weights.h5 file (no "
                    "'layers' group); HF tf_model.h5 files are a different format."
                )
            for name, dataset in datasets:
                # A compiled model's save_weights also stores its optimizer's state
                # ("optimizer/..."): not model weights, and not needed to load them.
                if isinstance(name, str) and name.startswith("optimizer/"):
                    continue
                self._entries[name] = dataset_entry(path, name, dataset)
                layer = dataset.parent.attrs.get("name")  # Keras records it on "vars"
                if isinstance(layer, str):
                    self._layer_of[name] = layer
            self.kerasbert_checksums = dataset_checksums(path, datasets)
            if self.kerasbert_checksums:
                self.checksummed_files.add(path)
        except CheckpointError:
            self._file.close()
            raise
        except Exception as e:
            self._file.close()
            raise CheckpointError(
                f"Keras weights file {path!r} is unreadable ({e}); it may be truncated or "
                "corrupt: save or download it again."
            ) from None

    def _read(self, entry):
        return read_dataset(self, entry.source_name)

    def check_checksums(self):
        """Read every variable that has a kerasbert checksum (a file ``convert --to keras``
        wrote) and check it; Keras, which loads the file, knows nothing of them."""
        for name in self.names():
            if name in (self.kerasbert_checksums or {}):
                self.read(name)

    def close(self):
        self._file.close()

    def _mismatch(self, model):
        """Name the first variables whose shapes the file and the model do not share."""
        in_model = collections.Counter(tuple(v.shape) for v in model.weights)
        in_file = collections.Counter(self.shape(n) for n in self.names())
        extra, missing = in_file - in_model, in_model - in_file
        file_side = []
        for name in self.names():  # in the file's order
            shape = self.shape(name)
            if extra[shape] > 0 and len(file_side) < _SHOWN:
                extra[shape] -= 1
                layer = f" (layer {self._layer_of[name]!r})" if name in self._layer_of else ""
                file_side.append(f"{name!r}{layer} is {shape}")
        model_side = []
        for variable in model.weights:  # in the model's order
            shape = tuple(variable.shape)
            if missing[shape] > 0 and len(model_side) < _SHOWN:
                missing[shape] -= 1
                model_side.append(f"{variable.path!r} is {shape}")
        parts = []
        if file_side:
            parts.append("in the file, not the model: " + "; ".join(file_side))
        if model_side:
            parts.append("in the model, not the file: " + "; ".join(model_side))
        return ", ".join(parts)

    def _variables_for(self, file, names, model):
        """``{dataset name: model variable}`` as Keras pairs them, where the file says.

        Keras stores layer ``L``'s own variables as ``.../vars/0``, ``.../vars/1``, ... in
        ``L``'s order and records ``L.name`` on each ``vars`` group; a variable's path is its
        layers' names joined by ``/``. A dataset whose layer path is not found (a model
        whose layers are named otherwise) is paired with a stand-in for the model's
        variables of its shape: their path and dtype if they share one dtype, else its own
        dtype (then only the finiteness check applies).
        """
        by_layer = collections.defaultdict(list)
        by_shape = collections.defaultdict(list)
        for variable in model.weights:
            by_layer[variable.path.rpartition("/")[0]].append(variable)
            by_shape[tuple(variable.shape)].append(variable)
        paired = {}
        for name in names:
            group, _, index = name.rpartition("/")
            chain, parts = [], group.split("/")[:-1]  # the saveable's groups, minus "vars"
            for depth in range(1, len(parts) + 1):
                vars_group = "/".join(parts[:depth] + ["vars"])
                layer = file[vars_group].attrs.get("name") if vars_group in file else None
                if isinstance(layer, str):
                    chain.append(layer)
            shape = self.shape(name)
            found = None
            for start in range(len(chain)):  # a nested model's name may lead the chain
                variables = by_layer.get("/".join(chain[start:]), [])
                if index.isdigit() and int(index) < len(variables):
                    candidate = variables[int(index)]
                    if tuple(candidate.shape) == shape:
                        found = candidate
                        break
            if found is None:
                same = by_shape.get(shape, [])
                dtypes = {str(v.dtype) for v in same}
                found = same[0] if len(same) == 1 else types.SimpleNamespace(
                    path=f"variables of shape {shape}",
                    dtype=dtypes.pop() if len(dtypes) == 1 else self.dtype(name),
                )  # fmt: skip
            paired[name] = found
        return paired

    def _check_stored_values(self, file, datasets, model, allow_non_finite):
        """Read every dataset once and check it as every other format's load does
        (:func:`kerasbert.checkpoints.loading._check_values`)."""
        datasets = [(n, d) for n, d in datasets if not str(n).startswith("optimizer/")]
        if {n for n, _ in datasets} != set(self.names()):
            raise CheckpointError(
                f"Keras weights file {self.path!r} changed since it was opened; open it again."
            )
        try:
            paired = self._variables_for(file, [n for n, _ in datasets], model)
        except KerasBertError:
            raise
        except Exception as e:  # HDF5 reading a damaged file's layer-name attributes
            raise CheckpointError(
                f"Keras weights file {self.path!r} has unreadable layer names ({e}); it may be "
                "truncated or corrupt: save or download it again."
            ) from None
        for name, dataset in datasets:
            try:
                array = dataset[()]
                if dataset.attrs.get("dtype") == "bfloat16":  # Keras's own marker
                    array = np.asarray(array).view(ml_dtypes.bfloat16)
            except Exception as e:
                raise CheckpointError(
                    f"Could not read variable {name!r} from {self.path!r} ({e}); the file "
                    "may be truncated or corrupt: save or download it again."
                ) from None
            _check_values(np.asarray(array), name, paired[name], self, allow_non_finite)

    def load_into(self, model, mapping=None, **options):
        """Load into ``model`` with Keras itself, refusing partial loads.

        Keras matches a ``.weights.h5`` to a model by architecture, not by name, so
        ``mapping`` and the name-based options are not used. Keras skips groups it cannot
        match with only a warning, leaving those layers random; here the file's variable
        shapes must equal the model's (else the error names the first variables that
        differ, with both shapes), and any such warning is an error. The file is checked
        again just before Keras opens it by its path, and every value is read once and
        checked as other formats' loads check them: a float variable stored as integers or
        booleans, or NaN / inf (unless ``allow_non_finite=True``), is an error, and nothing
        is assigned.

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
                f"model has {len(expected)}, and their shapes differ ({self._mismatch(model)}). "
                f"{advice}"
            )
        self.check_checksums()  # before anything else reads the values
        # What Keras opens is what is checked: the file again (storage, links), then every
        # value, as every other format's load checks them (loading._check_values).
        file, datasets = open_hdf5(self.path)
        with file:
            self._check_stored_values(file, datasets, model, options.get("allow_non_finite", False))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)
                model.load_weights(self.path)
        except KerasBertError:
            raise
        except (ValueError, KeyError, UserWarning) as e:
            raise WeightLoadingError(
                f"Keras weights file {self.path!r} does not fit this model ({e}). {advice}"
            ) from None
        except Exception as e:  # h5py / HDF5 reading the data
            raise CheckpointError(
                f"Keras could not read weights file {self.path!r} ({type(e).__name__}: {e}); "
                "it may be truncated or corrupt: save or download it again."
            ) from None
        return LoadReport(loaded=[(v.path, v.path) for v in model.weights])
