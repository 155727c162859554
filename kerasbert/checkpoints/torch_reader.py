"""Reader of HF ``pytorch_model.bin`` files; needs torch, which kerasbert never requires."""

from kerasbert.checkpoints.base import Checkpoint, Entry, read_shard_index
from kerasbert.errors import CheckpointError

_NO_TORCH = (
    "Reading {path!r} (a PyTorch pickle) needs torch, which is not installed. Either "
    "`pip install torch`, or use the model's model.safetensors file instead (most HF "
    "repositories offer one; with torch elsewhere, convert by `safetensors.torch.save_file"
    "(torch.load(path), 'model.safetensors')`)."
)


class TorchCheckpoint(Checkpoint):
    """Weights from ``pytorch_model.bin`` (or its ``.index.json`` shards).

    Each shard is memory-mapped by ``torch.load(..., mmap=True, weights_only=True)``, so no
    code in the file runs and tensors are read only when asked for.

    Args:
        path: a ``.bin`` / ``.pt`` file or a ``pytorch_model.bin.index.json``.

    Example (with torch installed)::

        ckpt = TorchCheckpoint("bert-base-chinese/pytorch_model.bin")
        ckpt.read("bert/embeddings/word_embeddings").shape  # (21128, 768)
    """

    format = "pytorch"
    naming = "hf"

    def __init__(self, path):
        super().__init__(path)
        try:
            import torch
        except ImportError:
            raise CheckpointError(_NO_TORCH.format(path=path)) from None
        self._torch = torch
        files = sorted(set(read_shard_index(path).values())) if path.endswith(".json") else [path]
        self._tensors = {}
        for file in files:
            try:
                state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
            except Exception as e:
                raise CheckpointError(
                    f"{file!r} is not a readable PyTorch checkpoint ({e}); it may be "
                    "truncated or corrupt: download it again."
                ) from None
            if not isinstance(state, dict):
                raise CheckpointError(f"{file!r} holds a {type(state)}, not a state dict.")
            self._tensors.update(state)
        sources = [
            Entry(name, tuple(t.shape), str(t.dtype).replace("torch.", ""))
            for name, t in self._tensors.items()
            if hasattr(t, "shape")
        ]
        self._add_translated(sources)

    def _read(self, entry):
        tensor = self._tensors[entry.source_name]
        if tensor.dtype == self._torch.bfloat16:
            tensor = tensor.float()
        return tensor.detach().numpy()

    def close(self):
        self._tensors.clear()
