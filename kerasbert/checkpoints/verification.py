"""Checking a whole checkpoint: ``kerasbert verify PATH`` / :func:`verify`.

Loading checks what it reads; :func:`verify` reads everything a checkpoint stores, model
weights and ignored buffers alike, without a model, and lists every problem it finds:

- every tensor is read fully: TensorFlow's CRC-32C (the TF reader checks it on reading) and
  kerasbert's own checksums, where kerasbert wrote the file
  (:mod:`kerasbert.checkpoints.integrity`), must match; a file that has kerasbert's checksums
  must have one for every tensor;
- dtypes must be numeric; a model weight (by the family's name table) must be a float;
- float tensors must be finite (no NaN / inf);
- TensorFlow data shards must be exactly covered by what the index places in them (a
  truncated shard, bytes beyond the last tensor, gaps and overlaps are problems); the other
  formats' readers check their files' sizes when they open them;
- a model folder that :func:`kerasbert.pretrained.get_pretrained` fetched must still hold the
  files it recorded, with the same sizes and SHA-256 (:func:`kerasbert.folders.check_fetch_record`).

Example:

>>> import numpy as np, tempfile, os
>>> from kerasbert.checkpoints.tf_bundle import write_tf_checkpoint
>>> prefix = os.path.join(tempfile.mkdtemp(), "bert_model.ckpt")
>>> write_tf_checkpoint(prefix, {"bert/pooler/dense/bias": np.array([1.0, np.nan], "f4")})
>>> report = verify(prefix)
>>> report.ok, report.problems
(False, ["'bert/pooler/dense/bias' in '...data-00000-of-00001' holds 1 NaN or infinite values"])
"""

import os
from dataclasses import dataclass, field

import numpy as np

from kerasbert import families
from kerasbert.checkpoints.formats import open_checkpoint, resolve_checkpoint
from kerasbert.checkpoints.tf_bundle import TFCheckpoint
from kerasbert.errors import CheckpointError, KerasBertError
from kerasbert.folders import RECORD, check_fetch_record, read_fetch_record
from kerasbert.progress import progress_bar

_NUMERIC_KINDS = "biuf"


@dataclass
class VerifyReport:
    """What :func:`verify` found.

    Attributes:
        path: the path given.
        checkpoint: the file or TF prefix read (None when none could be opened).
        format: its format (None when it could not be opened).
        family: the detected family, or None.
        tensors: tensors read.
        bytes: bytes of tensor data read.
        tf_crcs: tensors checked against TensorFlow's CRC-32C.
        kerasbert_checksums: tensors checked against kerasbert's own checksums.
        record_files: files of a fetch record compared (size and SHA-256).
        problems: one line per problem.
    """

    path: str
    checkpoint: str = None
    format: str = None
    family: str = None
    tensors: int = 0
    bytes: int = 0
    tf_crcs: int = 0
    kerasbert_checksums: int = 0
    record_files: int = 0
    problems: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def summary(self):
        """One line: what was checked and how many problems."""
        checks = [f"{self.tensors} tensors ({self.bytes:,} bytes)"]
        if self.tf_crcs:
            checks.append(f"{self.tf_crcs} TensorFlow CRC-32C")
        if self.kerasbert_checksums:
            checks.append(f"{self.kerasbert_checksums} kerasbert checksums")
        if self.record_files:
            checks.append(f"{self.record_files} files against the fetch record")
        what = self.checkpoint or self.path
        kind = f" ({self.format}{', ' + self.family if self.family else ''})" if self.format else ""
        verdict = "OK" if self.ok else f"{len(self.problems)} problem(s)"
        return f"{verdict}: {what}{kind}: checked {', '.join(checks)}"

    def to_text(self):
        return "\n".join(self.problems + [self.summary()])


def _is_float(array):
    return array.dtype.kind == "f" or "float" in array.dtype.name  # bfloat16 is kind 'V'


def _weight_names(checkpoint, family):
    """Stored names of the tensors that are model weights (must be floats), or None when
    that cannot be told: an unknown family, or a Keras ``.weights.h5`` without the
    ``kerasbert.json`` that ``convert --to keras`` writes beside it (a kerasbert model's
    variables are all floats; another Keras model may have integer state)."""
    if not checkpoint.names_are_canonical:
        folder = os.path.dirname(checkpoint.path) or "."
        return set(checkpoint.names()) if os.path.isfile(os.path.join(folder, RECORD)) else None
    if family is None:
        return None
    table = families.name_table(family, "hf")
    return {
        checkpoint.entry(name).source_name
        for name in checkpoint.names()
        if table is None or table.from_canonical(name) is not None
    }


def _check_tensor(checkpoint, name, entry, weights, report):
    file = checkpoint.file_of(name)
    where = f"{name!r} in {file!r}"
    try:
        array = np.asarray(checkpoint.read_stored(name))
    except CheckpointError as e:
        report.problems.append(str(e))
        return
    report.tensors += 1
    report.bytes += array.nbytes
    if isinstance(checkpoint, TFCheckpoint) and checkpoint._source[name].get("crc32c") is not None:
        report.tf_crcs += 1
    stored = checkpoint.kerasbert_checksums or {}
    if name in stored:
        report.kerasbert_checksums += 1
    elif file in checkpoint.checksummed_files:
        report.problems.append(
            f"{where} has no kerasbert checksum although the file has them for its other "
            "tensors: the file was changed after kerasbert wrote it"
        )
    if array.dtype.kind not in _NUMERIC_KINDS and not _is_float(array):
        report.problems.append(f"{where} holds {array.dtype} values, not numbers")
        return
    if weights is not None and name in weights and not _is_float(array):
        report.problems.append(
            f"{where} is a model weight stored as {array.dtype}, not as floats: the file is "
            "mislabelled or corrupt"
        )
    if _is_float(array):
        finite = np.isfinite(array.astype(np.float32) if array.dtype.kind != "f" else array)
        if not finite.all():
            report.problems.append(
                f"{where} holds {int(finite.size - finite.sum())} NaN or infinite values"
            )


def _check_tf_shards(checkpoint, report):
    """Each data shard must hold exactly the bytes the index places in it."""
    for shard, spans in sorted(checkpoint.data_spans().items()):
        path = checkpoint.shard_path(shard)
        if not os.path.isfile(path):
            state = "is not a regular file" if os.path.exists(path) else "is missing"
            report.problems.append(f"data shard {path!r} of {checkpoint.path!r} {state}")
            continue
        size = os.path.getsize(path)
        end = 0
        for offset, length, what in sorted(spans):
            if offset > end:
                report.problems.append(
                    f"{path!r}: bytes {end}-{offset} belong to no tensor of the index"
                )
            elif offset < end:
                report.problems.append(
                    f"{path!r}: {what} (bytes {offset}-{offset + length}) overlaps the tensor "
                    "before it"
                )
            end = max(end, offset + length)
        if size < end:
            report.problems.append(
                f"{path!r} has {size} bytes but the index places tensors up to byte {end}: "
                "the file is truncated"
            )
        elif size > end:
            report.problems.append(
                f"{path!r} has {size} bytes but the index places tensors only up to byte "
                f"{end}: {size - end} bytes more than the index accounts for"
            )


def verify(path, progress=False):
    """Read and check every tensor of a checkpoint, and a fetched model's files.

    Args:
        path: a checkpoint file, TensorFlow prefix, or folder (a model folder
            :func:`kerasbert.pretrained.get_pretrained` fetched is also checked against its
            fetch record).
        progress: draw a progress bar over the tensors (``True``, ``"auto"``, ``False``;
            :func:`kerasbert.progress.progress_bar`).

    Returns:
        A :class:`VerifyReport`; ``report.ok`` when nothing is wrong.

    Raises:
        CheckpointError: ``path`` is no checkpoint (nothing there, an unknown format, a
            folder with none and no fetch record). A checkpoint that exists but cannot be
            opened (a corrupt header, malformed checksums) is a problem in the report.
    """
    path = os.fspath(path)
    report = VerifyReport(path=path)
    record = None
    if os.path.isdir(path):
        try:
            record = read_fetch_record(path)
        except KerasBertError as e:
            report.problems.append(str(e))
    try:
        fmt, location = resolve_checkpoint(path)
    except CheckpointError:
        if record is None and not report.problems:
            raise
        fmt = location = None
    if record is not None:
        report.record_files = len(record["files"])
        report.problems.extend(check_fetch_record(path, record, full=True))
    if location is None:
        return report
    report.checkpoint, report.format = location, fmt
    try:
        checkpoint = open_checkpoint(location)
    except CheckpointError as e:
        report.problems.append(str(e))
        return report
    with checkpoint:
        try:
            report.family = families.detect_checkpoint(checkpoint)
        except KerasBertError:
            report.family = None
        if isinstance(checkpoint, TFCheckpoint):
            _check_tf_shards(checkpoint, report)
        weights = _weight_names(checkpoint, report.family)
        entries = checkpoint.stored_entries()
        with progress_bar(total=len(entries), desc="verifying", unit="var",
                          enabled=progress) as bar:  # fmt: skip
            for name, entry in entries.items():
                _check_tensor(checkpoint, name, entry, weights, report)
                bar.update(1)
    return report
