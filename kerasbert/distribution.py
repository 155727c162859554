"""Layout maps that let ``keras.distribution.ModelParallel`` shard kerasbert models.

Keras 3 already has the engine: a :class:`keras.distribution.DeviceMesh` names the device
axes, a :class:`keras.distribution.LayoutMap` maps regexes of ``variable.path`` to
shardings, and ``ModelParallel`` applies them when variables are created (optimizer slots
inherit them). :func:`get_layout_map` supplies the regexes for the layer names of
:func:`kerasbert.build_transformer_model` (BERT / RoBERTa, ALBERT shared or unshared, NEZHA),
Megatron-style:

=================================================  ============================
variables                                          layout
=================================================  ============================
attention ``query`` / ``key`` / ``value`` kernels  ``(None, model)``: columns
  (self-attention, and T5's cross-attention)
their biases                                       ``(model,)``
attention ``output`` kernel                        ``(model, None)``: rows
feed-forward ``intermediate`` kernel(s)            ``(None, model)``: columns
its bias                                           ``(model,)``
feed-forward ``output`` kernel                     ``(model, None)``: rows
``Embedding-Token`` table                          ``(model, None)``: vocab rows
``MLM-Bias``                                       ``(model,)``
T5's untied ``Decoder-Output-LM`` kernel           ``(None, model)``: vocab columns
every other variable                               replicated
=================================================  ============================

Each attention / feed-forward block then needs one all-reduce (after its row-parallel
kernel), as in Megatron-LM. ``DataParallel`` needs no layout map and works as is.
"""

import os
import re

from kerasbert.errors import KerasBertError


class DistributionError(KerasBertError, ValueError):
    """A device mesh, layout option or model does not fit the requested sharding.

    Example:

    >>> issubclass(DistributionError, KerasBertError), issubclass(DistributionError, ValueError)
    (True, True)
    """


# Optional prefix: a kerasbert model built inside another layer's scope gets one.
# Any path above the layer, and a builder's layer-name prefix ("Successor-").
_PREFIX = r"(?:.*/)?(?:[^/]*-)?"
# Block names of every family: ``Transformer-3`` (BERT, NEZHA, unshared ALBERT),
# ``Transformer`` (shared ALBERT), ``Transformer-Group1-Inner0``, ``Transformer-2-Inner1``.
_BLOCK = _PREFIX + r"Transformer(?:-[^/]+)?"
_ATTENTION = _BLOCK + r"-MultiHead(?:Self|Cross)Attention/"  # cross: T5's decoder
_FEED_FORWARD = _BLOCK + r"-FeedForward/"

# The 2-D variables that stay replicated; listing them makes the map describe every
# kernel of a kerasbert model, so a layer added later without a rule is easy to spot.
_REPLICATED_2D = (
    _PREFIX + r"Embedding-(?:Segment|Position)/embeddings",
    _PREFIX + r"(?:Encoder-|Decoder-)?Embedding-Relative-Position/embeddings",  # T5's biases
    _PREFIX + r"(?:Embedding-Mapping|Output-Mapping|Pooler-Dense|NSP-Proba|MLM-Dense)/kernel",
    _PREFIX + r"Discriminator-(?:Dense|Prediction)/kernel",  # ELECTRA's head
    # conditional layer normalization's projections (bert4keras's layer_norm_cond)
    _PREFIX + r"[^/]*-Norm/(?:hidden|gamma|beta)_dense/kernel",
)

EMBEDDING_AXES = ("vocab", "hidden")


def get_layout_map(
    device_mesh,
    model_axis="model",
    data_axis=None,
    embedding_axis="vocab",
    model=None,
):
    """A ``keras.distribution.LayoutMap`` that shards a kerasbert model over ``model_axis``.

    Use it with ``keras.distribution.ModelParallel`` and build (and load) the model inside
    the distribution's scope, so every variable is created with its layout.

    Args:
        device_mesh: a ``keras.distribution.DeviceMesh``.
        model_axis: name of the mesh axis the weights are split over.
        data_axis: None (default) keeps the other dimension of each sharded weight whole.
            A mesh axis name (usually the batch axis) also splits that dimension over it,
            ZeRO-3 / FSDP style as keras-hub's Gemma and Llama maps do: less memory per
            device, one all-gather per weight and step more.
        embedding_axis: ``"vocab"`` (default) splits the token table by rows, and then
            ``MLM-Bias`` with it; ``"hidden"`` by columns, for vocabularies that the model
            axis does not divide (e.g. 30522 over 4 devices).
        model: optional; a built ``keras.Model`` or a config (dict or JSON path, as
            :func:`kerasbert.build_transformer_model` takes) to check against the map:
            every sharded dimension must be divisible by its mesh axis, and a Keras model
            must have variables the map shards. Checking a config needs no weights, so it
            can run before the model is built inside the scope (with ``keep_tokens``, pass
            the reduced ``vocab_size`` in the config).

    Returns:
        A ``keras.distribution.LayoutMap`` for ``device_mesh``; variables that match no key
        (LayerNorm weights, row-parallel biases, task heads you add) are replicated.

    Raises:
        DistributionError: ``device_mesh`` is not a DeviceMesh, lacks a named axis,
            ``embedding_axis`` is unknown, or ``model`` does not fit the mesh.

    Example (a one-device mesh; with 8 devices use ``shape=(2, 4)``):

    >>> import keras, kerasbert
    >>> mesh = keras.distribution.DeviceMesh(
    ...     shape=(1, 1), axis_names=("batch", "model"),
    ...     devices=keras.distribution.list_devices()[:1])
    >>> layout_map = get_layout_map(mesh)
    >>> layout_map["Transformer-0-FeedForward/intermediate/kernel"].axes
    (None, 'model')
    >>> layout_map["Transformer-MultiHeadSelfAttention/output/kernel"].axes
    ('model', None)
    >>> distribution = keras.distribution.ModelParallel(
    ...     layout_map=layout_map, batch_dim_name="batch")
    >>> with distribution.scope():
    ...     model = kerasbert.build_transformer_model(
    ...         {"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 1,
    ...          "num_attention_heads": 2, "intermediate_size": 16}, with_mlm=True)
    >>> kernel = model.get_layer("Transformer-0-MultiHeadSelfAttention").query_dense.kernel
    >>> distribution.get_variable_layout(kernel).axes
    (None, 'model')
    """
    import keras

    if not isinstance(device_mesh, keras.distribution.DeviceMesh):
        raise DistributionError(
            f"device_mesh must be a keras.distribution.DeviceMesh, got "
            f"{type(device_mesh).__name__}; build one with keras.distribution.DeviceMesh("
            "shape=(2, 4), axis_names=('batch', 'model'), devices=...)."
        )
    axis_names = list(device_mesh.axis_names)
    for role, axis in (("model_axis", model_axis), ("data_axis", data_axis)):
        if axis is not None and axis not in axis_names:
            raise DistributionError(
                f"{role}={axis!r} is not an axis of the device mesh, whose axes are "
                f"{axis_names} (shape {tuple(device_mesh.shape)}); pass {role}= one of them "
                f"or name a mesh axis {axis!r}."
            )
    if model_axis is None:
        raise DistributionError(f"model_axis must name a mesh axis, one of {axis_names}.")
    if data_axis == model_axis:
        raise DistributionError(
            f"data_axis and model_axis are both {model_axis!r}; a weight dimension can be "
            "split over one axis only: use two different mesh axes or data_axis=None."
        )
    if embedding_axis not in EMBEDDING_AXES:
        raise DistributionError(
            f"embedding_axis={embedding_axis!r} is unknown; use one of {list(EMBEDDING_AXES)}."
        )

    m, d = model_axis, data_axis
    layout_map = keras.distribution.LayoutMap(device_mesh)
    # The token table goes by vocab rows, as keras-hub's layout maps split theirs: it is
    # the largest matrix (V >> H), and the tied MLM head multiplies by its transpose, so row
    # shards give each device its own slice of the logits without communication, while
    # column shards would all-reduce the full (batch, length, vocab) logits; the lookup
    # pays only a small all-reduce of (batch, length, E).
    if embedding_axis == "vocab":
        layout_map[_PREFIX + r"Embedding-Token/embeddings"] = (m, d)
        layout_map[_PREFIX + r"MLM-Bias/bias"] = (m,)
        layout_map[_PREFIX + r"Decoder-Output-LM/kernel"] = (d, m)  # T5's untied head
    else:
        layout_map[_PREFIX + r"Embedding-Token/embeddings"] = (d, m)
        layout_map[_PREFIX + r"Decoder-Output-LM/kernel"] = (m, d)
    layout_map[_ATTENTION + r"(?:query|key|value)/kernel"] = (d, m)
    layout_map[_ATTENTION + r"(?:query|key|value)/bias"] = (m,)
    layout_map[_ATTENTION + r"output/kernel"] = (m, d)
    # intermediate_1, ...: the other branches of a gated feed-forward (T5 1.1)
    layout_map[_FEED_FORWARD + r"intermediate(?:_\d+)?/kernel"] = (d, m)
    layout_map[_FEED_FORWARD + r"intermediate(?:_\d+)?/bias"] = (m,)
    layout_map[_FEED_FORWARD + r"output/kernel"] = (m, d)
    for pattern in _REPLICATED_2D:
        layout_map[pattern] = (None, None)

    if model is not None:
        check_layout_map(layout_map, model)
    return layout_map


def matching_keys(layout_map, path):
    """The keys of ``layout_map`` whose regex matches the whole of ``path``.

    Args:
        layout_map: a ``keras.distribution.LayoutMap`` (or any mapping of regexes).
        path: a variable path such as ``"Transformer-0-FeedForward/output/kernel"``.

    Example:

    >>> import keras
    >>> mesh = keras.distribution.DeviceMesh((1,), ["model"], ["cpu:0"])
    >>> len(matching_keys(get_layout_map(mesh), "MLM-Dense/kernel"))
    1
    """
    return [key for key in layout_map if re.fullmatch(key, path)]


def check_layout_map(layout_map, model):
    """Check that ``model`` can be created with ``layout_map``; raise if not.

    Args:
        layout_map: a ``keras.distribution.LayoutMap``, e.g. from :func:`get_layout_map`.
        model: a built ``keras.Model``, or a config (dict or JSON path) of one.

    Raises:
        DistributionError: a variable matches several keys, a sharded dimension is not
            divisible by the size of its mesh axes, or a Keras model has nothing to shard.

    Example:

    >>> import keras
    >>> mesh = keras.distribution.DeviceMesh((2,), ["model"], ["cpu:0", "cpu:1"])
    >>> layout_map = get_layout_map(mesh)
    >>> check_layout_map(layout_map, {"vocab_size": 21128, "hidden_size": 8,
    ...     "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16})
    >>> check_layout_map(layout_map, {"vocab_size": 21127, "hidden_size": 8,
    ...     "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16})
    Traceback (most recent call last):
    ...
    kerasbert.distribution.DistributionError: ...Embedding-Token/embeddings of shape (21127, 8)...
    """
    import keras

    if isinstance(model, keras.Model):
        variables = [(v.path, tuple(v.shape)) for v in model.variables]
        name = f"model {model.name!r}"
    elif isinstance(model, (dict, str, os.PathLike)):
        variables = _shapes_from_config(model)
        name = "the config"
    else:
        raise DistributionError(
            f"model must be a keras.Model or a config (dict or path), got {type(model).__name__}."
        )
    mesh = layout_map.device_mesh
    axis_sizes = dict(zip(mesh.axis_names, mesh.shape))
    problems = []
    sharded = 0
    for path, shape in variables:
        keys = matching_keys(layout_map, path)
        if len(keys) > 1:
            raise DistributionError(
                f"Variable {path!r} matches several layout keys {keys}; make the patterns "
                "exclusive."
            )
        if not keys:
            continue
        axes = layout_map[keys[0]].axes
        if len(axes) != len(shape):
            problems.append(f"{path} of shape {shape} gets a {len(axes)}-D layout {axes}")
            continue
        for dim, (size, axis) in enumerate(zip(shape, axes)):
            if axis is None:
                continue
            sharded += 1
            parts = axis_sizes[axis]
            if size % parts:
                problems.append(
                    f"{path} of shape {shape}: dimension {dim} ({size}) is not divisible by "
                    f"mesh axis {axis!r} ({parts} devices)"
                )
    if problems:
        raise DistributionError(
            f"The layout map does not fit {name}: " + "; ".join(problems) + ". Choose mesh "
            "axis sizes that divide these dimensions; for the token table, "
            "embedding_axis='hidden' splits the embedding size instead of the vocabulary."
        )
    if sharded == 0 and isinstance(model, keras.Model):
        raise DistributionError(
            f"No variable of {name} matches a sharding rule of the layout map, so nothing "
            "would be sharded; get_layout_map knows the layer names of "
            "kerasbert.build_transformer_model (Embedding-Token, Transformer-*-...)."
        )


def _shapes_from_config(config):
    """``(path, shape)`` of one block's sharded variables and the token table."""
    from kerasbert.config import load_config

    config = load_config(config)
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    inner = heads * (config.get("attention_head_size") or hidden // heads)
    embedding = config.get("embedding_size") or hidden
    vocab = config["vocab_size"]
    attention = "Transformer-0-MultiHeadSelfAttention/"
    feed_forward = "Transformer-0-FeedForward/"
    return [
        ("Embedding-Token/embeddings", (vocab, embedding)),
        ("MLM-Bias/bias", (vocab,)),
        (attention + "query/kernel", (hidden, inner)),
        (attention + "query/bias", (inner,)),
        (attention + "output/kernel", (inner, hidden)),
        (feed_forward + "intermediate/kernel", (hidden, config["intermediate_size"])),
        (feed_forward + "intermediate/bias", (config["intermediate_size"],)),
        (feed_forward + "output/kernel", (config["intermediate_size"], hidden)),
    ]
