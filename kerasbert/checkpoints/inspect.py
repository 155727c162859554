"""Describing a checkpoint: format, family, variables, shapes, dtypes, parameter count.

Run as ``python -m kerasbert.checkpoints PATH``.
"""

from dataclasses import dataclass

from kerasbert import families
from kerasbert.checkpoints.formats import open_checkpoint


@dataclass
class CheckpointSummary:
    """What :func:`inspect` finds.

    Attributes:
        path: the file or TF prefix that was read.
        format: ``tensorflow``, ``safetensors``, ``pytorch``, ``hf_tf`` or ``keras``.
        family: the detected family's name, or None when unknown.
        variables: ``[(canonical name, shape, dtype, source name)]``.
        ignored: source names that hold no model weight.
        num_parameters: elements over the model weights (the variables the family's names
            cover; every variable when the family is unknown).
        other_variables: the other variables (optimizer slots such as ``.../adam_m``,
            ``global_step``, another model's weights such as an ELECTRA joint checkpoint's
            ``generator/...``), not counted as parameters.
        num_other: elements over ``other_variables``.
        candidates: when ``family`` is None, the families whose checkpoint names these
            are (several, e.g. NEZHA and RoFormer: only a config tells them apart).
    """

    path: str
    format: str
    family: str
    variables: list
    ignored: list
    num_parameters: int
    other_variables: list = ()
    num_other: int = 0
    candidates: tuple = ()

    def _family_text(self):
        if self.family:
            return self.family
        if len(self.candidates) > 1:
            return (
                f"{' or '.join(self.candidates)} (their checkpoint names are the same: the "
                "config or model= decides)"
            )
        return "unknown"

    def to_text(self):
        lines = [
            f"checkpoint: {self.path}",
            f"format:     {self.format}",
            f"family:     {self._family_text()}",
            f"variables:  {len(self.variables)}",
            f"parameters: {self.num_parameters:,}",
        ]
        if self.other_variables:
            lines.append(
                f"other:      {self.num_other:,} in {len(self.other_variables)} variables that "
                "are not this model's weights (optimizer slots, step counters, or another "
                "model's: an ELECTRA pre-training checkpoint's generator/)"
            )
        lines.append("")
        width = max((len(v[0]) for v in self.variables), default=10)
        for name, shape, dtype, _ in self.variables:
            lines.append(f"  {name:<{width}}  {dtype:<8}  {list(shape)}")
        if self.ignored:
            lines.append("")
            lines.append(f"ignored (no model weight): {', '.join(self.ignored)}")
        return "\n".join(lines)


def inspect(path):
    """Summarize a checkpoint of any supported format.

    Args:
        path: a checkpoint file, TensorFlow prefix, or folder.

    Returns:
        A :class:`CheckpointSummary`.

    Example:

    >>> import numpy as np, tempfile, os
    >>> from kerasbert.checkpoints.tf_bundle import write_tf_checkpoint
    >>> prefix = os.path.join(tempfile.mkdtemp(), "bert_model.ckpt")
    >>> write_tf_checkpoint(prefix, {"bert/embeddings/position_embeddings": np.zeros((4, 2)),
    ...                              "bert/encoder/layer_0/output/dense/bias": np.zeros(2)})
    >>> s = inspect(prefix)
    >>> s.format, s.family, s.num_parameters
    ('tensorflow', 'bert', 10)
    """
    with open_checkpoint(path) as checkpoint:
        checkpoint.check_files()
        names = checkpoint.names()
        variables = [
            (n, checkpoint.shape(n), checkpoint.dtype(n), checkpoint.entry(n).source_name)
            for n in names
        ]
        family = families.detect_checkpoint(checkpoint)
        candidates = tuple(families.checkpoint_candidates(checkpoint)) if not family else ()
        # Families with the same checkpoint names agree on which are model weights.
        named_by = family or (candidates[0] if candidates else None)
        table = families.name_table(named_by, "hf") if named_by else None
        other = [n for n in names if table is not None and table.from_canonical(n) is None]
        weights = [n for n in names if n not in set(other)]
        return CheckpointSummary(
            path=checkpoint.path,
            format=checkpoint.format,
            family=family,
            variables=variables,
            ignored=list(checkpoint.ignored_names),
            num_parameters=checkpoint.num_parameters(weights),
            other_variables=other,
            num_other=checkpoint.num_parameters(other),
            candidates=candidates,
        )
