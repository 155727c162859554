"""Checkpoint readers under one naming scheme (Google's TF names), and weight loading."""

from kerasbert.checkpoints.base import ArrayCheckpoint, Checkpoint, Entry
from kerasbert.checkpoints.detect import detect_family
from kerasbert.checkpoints.export import model_arrays, save_tf_checkpoint
from kerasbert.checkpoints.formats import detect_format, open_checkpoint, resolve_checkpoint
from kerasbert.checkpoints.inspect import CheckpointSummary, inspect
from kerasbert.checkpoints.loading import LoadReport, load_weights
from kerasbert.checkpoints.tf_bundle import TFCheckpoint, write_tf_checkpoint

__all__ = [
    "CheckpointSummary",
    "TFCheckpoint",
    "detect_family",
    "inspect",
    "model_arrays",
    "save_tf_checkpoint",
    "write_tf_checkpoint",
    "ArrayCheckpoint",
    "Checkpoint",
    "Entry",
    "LoadReport",
    "detect_format",
    "load_weights",
    "open_checkpoint",
    "resolve_checkpoint",
]
