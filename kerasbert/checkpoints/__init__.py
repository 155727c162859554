"""Checkpoint readers and writers under one naming scheme (each family's canonical names).

This package knows files, arrays and names; what a model is, and which family a name
belongs to, it asks :mod:`kerasbert.families` and the caller. Exporting a model's weights
is :mod:`kerasbert.models.export`.
"""

from kerasbert.checkpoints.base import ArrayCheckpoint, Checkpoint, Entry
from kerasbert.checkpoints.formats import detect_format, open_checkpoint, resolve_checkpoint
from kerasbert.checkpoints.inspect import CheckpointSummary, inspect
from kerasbert.checkpoints.loading import LoadReport, load_weights
from kerasbert.checkpoints.tf_bundle import TFCheckpoint, write_tf_checkpoint
from kerasbert.checkpoints.verification import VerifyReport, verify

__all__ = [
    "ArrayCheckpoint",
    "Checkpoint",
    "CheckpointSummary",
    "Entry",
    "LoadReport",
    "TFCheckpoint",
    "VerifyReport",
    "detect_format",
    "inspect",
    "load_weights",
    "open_checkpoint",
    "resolve_checkpoint",
    "verify",
    "write_tf_checkpoint",
]
