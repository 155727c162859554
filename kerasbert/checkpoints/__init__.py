"""Checkpoint readers under one naming scheme (Google's TF names), and weight loading."""

from kerasbert.checkpoints.base import ArrayCheckpoint, Checkpoint, Entry
from kerasbert.checkpoints.formats import detect_format, find_checkpoint_file, open_checkpoint
from kerasbert.checkpoints.loading import LoadReport, load_weights

__all__ = [
    "ArrayCheckpoint",
    "Checkpoint",
    "Entry",
    "LoadReport",
    "detect_format",
    "find_checkpoint_file",
    "load_weights",
    "open_checkpoint",
]
