"""Reader of HF ``pytorch_model.bin`` files; needs torch, which kerasbert never requires.

Files are read by ``torch.load(..., weights_only=True, mmap=True)``: torch's restricted
unpickler, which builds tensors and plain containers and refuses everything else, so no
code in the file runs. kerasbert never falls back to a full unpickling, so torch's advice
to retry with ``weights_only=False`` (or to allow-list globals) is never passed on: for a
file from a stranger that is the advice to run the stranger's code.
"""

import os
import re

from kerasbert.checkpoints.base import Checkpoint, Entry, read_shard_index
from kerasbert.errors import CheckpointError

_NO_TORCH = (
    "Reading {path!r} (a PyTorch pickle) needs torch, which is not installed. Either "
    "`pip install torch`, or use the model's model.safetensors file instead (most HF "
    "repositories offer one; with torch elsewhere, convert by `safetensors.torch.save_file"
    "(torch.load(path, weights_only=True), 'model.safetensors')`)."
)
_ZIP_MAGIC = b"PK\x03\x04"
# What torch.save wrote before torch 1.6 (_use_new_zipfile_serialization=False): a pickle
# (protocol 2) of the legacy format's magic number, 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
_RESAVE = (
    "Re-save it where you trust it, with a current torch: `torch.save(torch.load(path, "
    "weights_only=True), path)`, or convert it to safetensors: `safetensors.torch.save_file("
    "torch.load(path, weights_only=True), 'model.safetensors')`."
)


def _check_container(file):
    """Refuse, before torch is imported, a file that is not torch's zip format."""
    try:
        with open(file, "rb") as f:
            head = f.read(len(_LEGACY_MAGIC))
    except OSError as e:
        raise CheckpointError(f"Cannot read PyTorch checkpoint {file!r} ({e}).") from None
    if head.startswith(_ZIP_MAGIC):
        return
    if head == _LEGACY_MAGIC:
        raise CheckpointError(
            f"{file!r} is in torch's legacy pickle format (torch.save before torch 1.6, or "
            "_use_new_zipfile_serialization=False), which kerasbert does not read: it "
            f"memory-maps only the zip format of current torch versions. {_RESAVE}"
        )
    raise CheckpointError(
        f"{file!r} is not a PyTorch checkpoint in torch's zip format (it does not start "
        "with a zip header); it may be truncated or corrupt, or another format: download "
        "it again."
    )


def _load_error(file, error):
    """A CheckpointError for what ``torch.load`` raised, without torch's unsafe advice."""
    message = str(error)
    unsafe = _UNSAFE_GLOBAL.search(message)
    if unsafe or "weights_only" in message or "safe_globals" in message:
        found = f" (it pickles {unsafe.group(1).rstrip('.')})" if unsafe else ""
        return CheckpointError(
            f"{file!r} holds Python objects other than tensors{found}. kerasbert reads "
            "torch files with torch's restricted loader only, which never runs code from "
            f"the file; such a file is not a plain state dict. {_RESAVE}"
        )
    reason = message.strip().splitlines()[0] if message.strip() else type(error).__name__
    return CheckpointError(
        f"{file!r} is not a readable PyTorch checkpoint ({reason}); it may be truncated or "
        "corrupt: download it again."
    )


class TorchCheckpoint(Checkpoint):
    """Weights from ``pytorch_model.bin`` (or its ``.index.json`` shards).

    Each shard is memory-mapped by ``torch.load(..., mmap=True, weights_only=True)``, so no
    code in the file runs and tensors are read only when asked for. Legacy (pre-zip)
    ``torch.save`` files are refused with what to do instead.

    Args:
        path: a ``.bin`` / ``.pt`` file or a ``pytorch_model.bin.index.json``.

    Example (with torch installed)::

        ckpt = TorchCheckpoint("bert-base-chinese/pytorch_model.bin")
        ckpt.read("bert/embeddings/word_embeddings").shape  # (21128, 768)
    """

    format = "pytorch"
    naming = "hf"

    def __init__(self, path):
        path = os.fspath(path)
        super().__init__(path)
        files = sorted(set(read_shard_index(path).values())) if path.endswith(".json") else [path]
        for file in files:
            if not os.path.isfile(file):
                raise CheckpointError(f"{file!r} is not a regular file; pass the .bin file itself.")
            _check_container(file)
        try:
            import torch
        except ImportError:
            raise CheckpointError(_NO_TORCH.format(path=path)) from None
        self._torch = torch
        self._tensors = {}
        for file in files:
            try:
                state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
            except Exception as e:
                raise _load_error(file, e) from None
            if not isinstance(state, dict):
                raise CheckpointError(
                    f"{file!r} holds a {type(state).__name__}, not a state dict of tensors."
                )
            self._tensors.update(state)
        sources = [
            Entry(name, tuple(t.shape), str(t.dtype).replace("torch.", ""))
            for name, t in self._tensors.items()
            if isinstance(name, str) and isinstance(t, torch.Tensor)
        ]
        self._add_translated(sources)

    def _read(self, entry):
        tensor = self._tensors[entry.source_name]
        try:
            if tensor.dtype == self._torch.bfloat16:
                tensor = tensor.float()
            return tensor.detach().numpy()
        except TypeError as e:  # a dtype numpy lacks (float8, complex32, quantized)
            raise CheckpointError(
                f"Tensor {entry.source_name!r} in {self.path!r} is stored as {entry.dtype}, "
                f"which kerasbert cannot read ({e}); convert it to float32 or float16."
            ) from None

    def close(self):
        self._tensors.clear()
