"""ELECTRA: BERT's encoder, with a discriminator head and (for generators) an MLM head."""

import re

from kerasbert.checkpoints.base import RenamedCheckpoint
from kerasbert.errors import ConfigError, ModelTypeError
from kerasbert.layers import Dense
from kerasbert.models.bert import BERT, HEAD_DTYPE, dense, layer_norm

BODIES = ("discriminator", "generator")


class ELECTRA(BERT):
    """Google's ELECTRA (google-research/electra, HFL's Chinese ELECTRA; bert4keras's
    ``ELECTRA``): BERT's post-LayerNorm encoder under the ``electra/`` scope, without a
    pooler, with ``Embedding-Mapping`` (``electra/embeddings_project``) when
    ``embedding_size`` differs from ``hidden_size``.

    Args:
        with_discriminator: add the replaced-token-detection head, per token:
            ``Discriminator-Dense`` (hidden size, ``hidden_act``) and
            ``Discriminator-Prediction`` (1 unit; ``True`` = sigmoid probabilities, or an
            activation name such as ``"linear"`` for logits), output ``(batch, length, 1)``.
        with_mlm: add the generator's MLM head (bert4keras's ELECTRA has none): BERT's head
            under ELECTRA's names (``generator_predictions/dense`` maps the hidden size to
            the embedding size, ``generator_predictions/LayerNorm``, the output tied to the
            word embeddings plus ``generator_predictions/output_bias``); ``True`` = softmax,
            or an activation name. With both heads the outputs are
            ``[discriminator, mlm]``.
        body: which model of a Google joint pre-training checkpoint to read (the released
            ``electra_small/base/large`` and HFL's TF zips hold the discriminator under
            ``electra/`` and the generator under ``generator/``, sharing
            ``electra/embeddings``): ``"discriminator"`` (default; also what every file of a
            single model holds, whatever it is) or ``"generator"`` (with the generator's
            config). The other model's variables are left unused.
        **kwargs: the options of :class:`kerasbert.models.bert.BERT`, except ``with_pool``
            and ``with_nsp`` (ELECTRA has neither) and ``application="lm"`` / ``"unilm"``
            (bert4keras refuses them for ELECTRA too).

    A model without the discriminator head is told apart from BERT's by its name (the
    default ``"electra"``) when it is exported without its builder
    (:func:`kerasbert.models.mapping_for_model`); with another name, export it with
    ``mapping=builder.variable_mapping()``.

    Example:

    >>> builder = ELECTRA(vocab_size=20, hidden_size=8, embedding_size=4,
    ...                   num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
    ...                   with_discriminator=True)
    >>> builder.build().output.shape
    (None, None, 1)
    >>> builder.variable_mapping()["Embedding-Mapping"]["kernel"]
    'electra/embeddings_project/kernel'
    """

    default_name = "electra"
    checkpoint_scope = "electra"
    checkpoint_options = ("body",)

    def __init__(self, with_discriminator=False, body="discriminator", **kwargs):
        application = kwargs.get("application", "encoder")
        if application in ("lm", "unilm"):
            raise ModelTypeError(
                f"ELECTRA cannot be built with application={application!r}: it is a "
                "bidirectional encoder (bert4keras refuses it too); use model='electra' as "
                "an encoder, or a BERT / RoFormer for language models."
            )
        for option in ("with_pool", "with_nsp"):
            if kwargs.get(option):
                raise ConfigError(
                    f"ELECTRA has no pooler or next-sentence head ({option}={kwargs[option]!r}"
                    "); its checkpoints hold none. Use with_discriminator= (per-token) or pool "
                    "the sequence output yourself."
                )
        if body not in BODIES:
            raise ConfigError(f"body must be one of {list(BODIES)}, got {body!r}.")
        super().__init__(**kwargs)
        self.with_discriminator = with_discriminator
        self.body = body

    def apply_final_layers(self, inputs):
        mlm = super().apply_final_layers(inputs)  # the sequence, or the MLM head's output
        if not self.with_discriminator:
            return mlm
        x = self.apply(
            inputs,
            Dense,
            units=self.hidden_size,
            activation=self.hidden_act_function(),
            kernel_initializer=self.initializer,
            name="Discriminator-Dense",
        )
        x = self.apply(
            x,
            Dense,
            units=1,
            activation="sigmoid" if self.with_discriminator is True else self.with_discriminator,
            kernel_initializer=self.initializer,
            dtype=HEAD_DTYPE,
            name="Discriminator-Prediction",
        )
        return [x, mlm] if self.with_mlm else x

    # -- checkpoint names --------------------------------------------------------------------
    def variable_mapping(self):
        mapping = super().variable_mapping()
        for name in ("Pooler-Dense", "NSP-Proba"):
            del mapping[name]
        mapping.update(
            {
                "Embedding-Mapping": dense("electra/embeddings_project"),
                "MLM-Dense": dense("generator_predictions/dense"),
                "MLM-Norm": layer_norm("generator_predictions/LayerNorm"),
                "MLM-Bias": {"bias": ("generator_predictions/output_bias", "vocab")},
                "Discriminator-Dense": dense("discriminator_predictions/dense"),
                "Discriminator-Prediction": dense("discriminator_predictions/dense_1"),
            }
        )
        return mapping

    @classmethod
    def checkpoint_view(cls, checkpoint, options):
        """A Google joint pre-training checkpoint as a checkpoint of one model (``body``).

        The chosen model's variables get the names of a model saved on its own (the
        generator's ``generator/...`` become ``electra/...``; the shared
        ``electra/embeddings`` stay, unless the generator has its own); the other model's
        are moved under its name (``generator/generator_predictions/...``,
        ``discriminator/electra/encoder/...``), so that they show neither as this model's
        heads nor as its weights, and are listed as unused. Checkpoints of one model are
        returned as they are.

        Example:

        >>> import numpy as np
        >>> from kerasbert.checkpoints import ArrayCheckpoint
        >>> joint = ArrayCheckpoint({n: np.zeros(1) for n in [
        ...     "electra/embeddings/word_embeddings", "electra/encoder/layer_0/x",
        ...     "generator/encoder/layer_0/x", "generator_predictions/output_bias",
        ...     "discriminator_predictions/dense/bias"]})
        >>> ELECTRA.checkpoint_view(joint, {"body": "generator"}).names()
        ... # doctest: +NORMALIZE_WHITESPACE
        ['discriminator/discriminator_predictions/dense/bias',
         'discriminator/electra/encoder/layer_0/x', 'electra/embeddings/word_embeddings',
         'electra/encoder/layer_0/x', 'generator_predictions/output_bias']
        """
        body = options.get("body") or "discriminator"
        if body not in BODIES:
            raise ConfigError(f"body must be one of {list(BODIES)}, got {body!r}.")
        if not checkpoint.names_are_canonical or getattr(checkpoint, "electra_body", None):
            return checkpoint
        names = checkpoint.names()
        if not any(name.startswith("generator/") for name in names):
            if body == "generator":
                raise ConfigError(
                    f"body='generator' reads the generator of a joint pre-training checkpoint "
                    f"(its weights under generator/), but {checkpoint.path!r} has none: it "
                    "holds one model. A generator saved on its own (HF ElectraForMaskedLM, "
                    "HFL's *-generator) has its weights under electra/: load it without body="
                    " (with_mlm=True for its MLM head)."
                )
            return checkpoint
        own_embeddings = any(name.startswith("generator/embeddings/") for name in names)
        rename = {}
        for name in names:
            if body == "discriminator":
                if name.startswith("generator_predictions/"):
                    rename[name] = "generator/" + name
            elif name.startswith("generator/"):
                rename[name] = "electra/" + name[len("generator/") :]
            elif name.startswith("electra/embeddings/") and not own_embeddings:
                continue  # shared by both models
            elif re.match(r"(electra|discriminator_predictions)/", name):
                rename[name] = "discriminator/" + name
        return RenamedCheckpoint(checkpoint, rename, electra_body=body)
