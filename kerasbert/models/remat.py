"""Gradient checkpointing: each transformer block recomputed in the backward pass.

Without it, training keeps every intermediate activation of every block alive until the
backward pass reaches it: attention logits and probabilities (``batch x heads x length²``
each), the feed-forward's inner activations (``batch x length x intermediate``) and about
eight ``batch x length x hidden`` tensors per block. With it, each block's forward pass keeps
only its inputs; the backward pass recomputes one block's activations at a time, for about
one extra forward pass of compute.

The unit is the whole block (attention, dropout, residual, norm, feed-forward, dropout,
residual, norm), not each layer: wrapping layers one by one (``keras.RematScope``) would
still keep every layer's output at the layer boundaries. A block is found in the functional
graph by kerasbert's layer names (``{prefix}-MultiHeadSelfAttention`` ...
``{prefix}-FeedForward-Norm``), so the layers, their names, weights and checkpoint mapping
are exactly those of the model built without the option; only the way :class:`RematModel`
walks its graph differs.

Why not ``jax.checkpoint``: it keeps the recomputation apart from the forward pass with an
optimization barrier, and XLA's CPU pipeline removes such barriers before its
common-subexpression elimination, which then merges the recomputation back into the forward
pass: on CPU the compiled program is the one without remat (same memory). The block here
runs under a ``jax.custom_vjp`` whose backward pass recomputes it from inputs tied to the
incoming cotangent by an exact no-op, a real data dependency no compiler pass removes. The
cost: forward-mode differentiation (``jax.jvp``) through a block is not available.
"""

import re

import keras

from kerasbert.errors import ConfigError

# The layers of one post-LN block, by name suffix after its prefix ("Transformer-3", ...).
BLOCK_PARTS = (
    "MultiHeadSelfAttention",
    "MultiHeadSelfAttention-Dropout",
    "MultiHeadSelfAttention-Add",
    "MultiHeadSelfAttention-Norm",
    "FeedForward",
    "FeedForward-Dropout",
    "FeedForward-Add",
    "FeedForward-Norm",
)
BLOCK_START, BLOCK_END = BLOCK_PARTS[0], BLOCK_PARTS[-1]
# The last layer of a block, its name perhaps behind a builder's prefix ("Successor-").
_BLOCK_END_NAME = re.compile(rf"(?:^|-)Transformer(?:-.+)?-{BLOCK_END}$")


def check_gradient_checkpointing(value):
    """Validate the ``gradient_checkpointing`` option; return it as a bool.

    Args:
        value: the option as given (``True`` / ``False``).

    Example:

    >>> check_gradient_checkpointing(False)
    False
    """
    if not isinstance(value, bool):
        raise ConfigError(
            f"gradient_checkpointing must be True or False, got {value!r}; pass "
            "gradient_checkpointing=True to recompute each transformer block in the "
            "backward pass."
        )
    if value and keras.backend.backend() != "jax":
        raise ConfigError(
            "gradient_checkpointing=True needs the JAX backend (each transformer block gets "
            "a jax.custom_vjp that recomputes it), but KERAS_BACKEND is "
            f"{keras.backend.backend()!r}; set KERAS_BACKEND=jax or build without the option."
        )
    return value


@keras.saving.register_keras_serializable(package="kerasbert")
class RematModel(keras.Model):
    """A functional ``keras.Model`` that rematerializes each transformer block.

    It is what ``build_transformer_model(..., gradient_checkpointing=True)`` returns, and
    behaves as the ``keras.Model(inputs, outputs)`` it would otherwise be: same layers,
    weights, outputs and gradients. When called on real tensors (JAX backend), each group
    of layers named ``{prefix}-MultiHeadSelfAttention`` ... ``{prefix}-FeedForward-Norm`` runs
    as one function that reverse-mode differentiation recomputes instead of storing (see
    :func:`recompute_in_backward`), so training keeps one tensor per block instead of all
    its activations. Dropout draws the same masks in the recomputation (the seed states are
    arguments of that function).

    A new model made with ``keras.Model(model.inputs, head(model.output))`` is a plain Keras
    model and walks the graph layer by layer again; build it as ``RematModel(inputs,
    outputs)`` (or call this model as a layer) to keep the saving.

    Args:
        inputs, outputs, name, ...: as ``keras.Model``'s functional constructor.
        gradient_checkpointing: group and rematerialize the blocks (True), or run the graph
            exactly like ``keras.Model`` (False). Saved in ``get_config()``.

    Example:

    >>> import numpy as np
    >>> from kerasbert.models import build_transformer_model
    >>> model = build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2,
    ...      "num_attention_heads": 2, "intermediate_size": 16}, gradient_checkpointing=True)
    >>> type(model).__name__, len(model.remat_blocks())
    ('RematModel', 2)
    >>> model.predict([np.ones((1, 5)), np.zeros((1, 5))], verbose=0).shape
    (1, 5, 8)
    """

    def __init__(self, *args, gradient_checkpointing=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.gradient_checkpointing = check_gradient_checkpointing(gradient_checkpointing)
        object.__setattr__(self, "_remat_schedule", None)

    def get_config(self):
        config = super().get_config()
        config["gradient_checkpointing"] = self.gradient_checkpointing
        return config

    def remat_blocks(self):
        """The layer-name lists of the blocks that are rematerialized, in execution order."""
        return [
            [node.operation.name for node in unit.nodes]
            for unit in self._schedule()
            if isinstance(unit, _Block)
        ]

    # -- graph execution -----------------------------------------------------------------
    def _run_through_graph(self, inputs, operation_fn=lambda op: op, call_fn=None):
        if call_fn is not None or not self.gradient_checkpointing:
            return super()._run_through_graph(inputs, operation_fn, call_fn=call_fn)
        flat_inputs = keras.tree.flatten(inputs)
        if any(isinstance(x, keras.KerasTensor) for x in flat_inputs):
            return super()._run_through_graph(inputs, operation_fn)

        values = {id(x): y for x, y in zip(self.inputs, flat_inputs)}
        for unit in self._schedule():
            if isinstance(unit, _Block):
                unit.run(values, lambda node: operation_fn(self._operation_of(node)))
            elif all(id(x) in values for x in unit.input_tensors):
                _run_node(unit, values, operation_fn(self._operation_of(unit)))

        outputs = []
        for x in self.outputs:
            if id(x) not in values:
                raise ConfigError(
                    f"Output {x.name!r} of model {self.name!r} is not connected to its "
                    "inputs; build the model from tensors that derive from its inputs."
                )
            outputs.append(values[id(x)])
        return keras.tree.pack_sequence_as(self._outputs_struct, outputs)

    def _operation_of(self, node):
        find = getattr(self, "_get_operation_for_node", None)  # Keras' NNX mapping
        return find(node) if find is not None else node.operation

    def _schedule(self):
        if self._remat_schedule is None:
            object.__setattr__(self, "_remat_schedule", _plan(self))
        return self._remat_schedule


def _run_node(node, values, operation):
    args, kwargs = node.arguments.fill_in(values)
    outputs = operation(*args, **kwargs)
    for x, y in zip(node.outputs, keras.tree.flatten(outputs)):
        values[id(x)] = y


class _Block:
    """The nodes of one transformer block, its external inputs and its used outputs."""

    def __init__(self, nodes, inputs, outputs):
        self.nodes, self.inputs, self.outputs = nodes, inputs, outputs
        self.variables, seen = [], set()
        for node in nodes:
            for variable in node.operation.variables:  # weights and dropout seed states
                if id(variable) not in seen:
                    seen.add(id(variable))
                    self.variables.append(variable)

    def run(self, values, operation_for):
        from keras.src.backend.common.masking import get_keras_mask, set_keras_mask
        from keras.src.backend.common.stateless_scope import get_stateless_scope
        from keras.src.backend.common.variables import AutocastScope

        outer = get_stateless_scope()
        args = [values[i] for i in self.inputs]
        masks = [get_keras_mask(x) for x in args]
        with AutocastScope(None):  # the stored values, not compute-dtype copies
            weights = [variable.value for variable in self.variables]
        written = {}  # the variables the block assigns (dropout seed states), in order

        def block(args, masks, weights):
            for x, mask in zip(args, masks):
                if mask is not None:
                    set_keras_mask(x, mask)
            local = dict(zip(self.inputs, args))
            scope = _BlockScope(outer is not None and outer.collect_losses)
            for variable, value in zip(self.variables, weights):
                scope.state_mapping[id(variable)] = value
            with scope:
                for node in self.nodes:
                    _run_node(node, local, operation_for(node))
            written["variables"] = [variable for variable, _ in scope.updates.values()]
            outputs = [local[i] for i in self.outputs]
            return (
                outputs,
                [get_keras_mask(x) for x in outputs],
                [value for _, value in scope.updates.values()],
                list(scope.losses),
            )

        outputs, out_masks, updates, losses = recompute_in_backward(block)(args, masks, weights)
        for i, y, mask in zip(self.outputs, outputs, out_masks):
            set_keras_mask(y, mask)
            values[i] = y
        for variable, value in zip(written["variables"], updates):
            variable.assign(value)
        for loss in losses:
            outer.add_loss(loss)


def recompute_in_backward(function):
    """``function`` with a VJP that recomputes it instead of keeping its intermediates.

    The forward pass keeps only the arguments. The backward pass makes its first argument
    (the activations) depend on the incoming cotangent through an exact no-op (``x - 0``)
    before recomputing: that keeps XLA from merging the recomputation into the forward
    pass. (``jax.checkpoint`` relies on an optimization barrier that XLA's CPU pipeline
    removes before common-subexpression elimination, which then undoes the saving on CPU.)
    The gradients are those of ``function``.

    Args:
        function: a JAX-traceable function of ``(activations, *other_args)``.

    Example:

    >>> import jax, jax.numpy as jnp
    >>> f = recompute_in_backward(lambda x, w: jnp.tanh(x * w))
    >>> float(jax.grad(lambda w: f(jnp.ones(3), w).sum())(0.5)) == float(
    ...     jax.grad(lambda w: jnp.tanh(jnp.ones(3) * w).sum())(0.5))
    True
    """
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def wrapped(*args):
        return function(*args)

    def forward(*args):
        return function(*args), args

    def backward(args, cotangent):
        floats = [
            leaf
            for leaf in jax.tree_util.tree_leaves(cotangent)
            if jnp.issubdtype(leaf.dtype, jnp.inexact)
        ]
        if floats:
            zero = jnp.abs(floats[0].reshape(-1)[0]) * 0  # +0.0, yet depends on the cotangent

            def tie(x):
                if jnp.issubdtype(jnp.result_type(x), jnp.inexact):
                    return x - zero.astype(jnp.result_type(x))
                return x

            args = (jax.tree_util.tree_map(tie, args[0]),) + tuple(args[1:])
        _, vjp = jax.vjp(function, *args)
        return vjp(cotangent)

    wrapped.defvjp(forward, backward)
    return wrapped


class _BlockScope(keras.StatelessScope):
    """The stateless scope a block runs in: its variables' values are the block function's
    arguments, and what it assigns is kept so the block can return it."""

    def __init__(self, collect_losses):
        super().__init__(collect_losses=collect_losses, initialize_variables=False)
        self.updates = {}

    def add_update(self, update):
        super().add_update(update)
        self.updates[id(update[0])] = update


def _producer(tensor):
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def _block_nodes(end, own):
    """The nodes of the block that ends at node ``end``, or None if it is not a full one."""
    prefix = end.operation.name[: -len(BLOCK_END) - 1]
    names = {f"{prefix}-{part}" for part in BLOCK_PARTS if part != BLOCK_END}
    found, stack, starts = {id(end): end}, [end], 0
    while stack:
        node = stack.pop()
        if node.operation.name == f"{prefix}-{BLOCK_START}":
            starts += 1
            continue  # the block's input comes from before the block
        for x in node.input_tensors:
            producer = _producer(x)
            if id(producer) in found or id(producer) not in own:
                continue
            if producer.operation is not None and producer.operation.name in names:
                found[id(producer)] = producer
                stack.append(producer)
    return found if starts == 1 and len(found) > 2 else None


def _plan(model):
    """The execution order of ``model``'s graph: single nodes and whole blocks."""
    order = [
        node
        for depth in sorted(model._nodes_by_depth, reverse=True)
        for node in model._nodes_by_depth[depth]
        if node.operation is not None and not node.is_input
    ]
    own = {id(node) for node in order}
    block_of = {}
    for node in order:
        name = node.operation.name
        if _BLOCK_END_NAME.search(name):
            members = _block_nodes(node, own)
            if members and not any(i in block_of for i in members):
                group = [n for n in order if id(n) in members]
                for member in members:
                    block_of[member] = group

    consumers = {}
    for node in order:
        for x in node.input_tensors:
            consumers.setdefault(id(x), []).append(node)
    model_outputs = {id(x) for x in model.outputs}

    units, seen = [], set()
    for node in order:
        group = block_of.get(id(node))
        if group is None:
            units.append(node)
        elif id(group[0]) not in seen:
            seen.add(id(group[0]))
            members = {id(n) for n in group}
            inputs, outputs = [], []
            for member in group:
                for x in member.input_tensors:
                    if id(_producer(x)) not in members and id(x) not in inputs:
                        inputs.append(id(x))
                for x in member.outputs:
                    used_outside = any(id(c) not in members for c in consumers.get(id(x), ()))
                    if used_outside or id(x) in model_outputs:
                        outputs.append(id(x))
            units.append(_Block(group, inputs, outputs))
    return _order(units, model)


def _order(units, model):
    """Units in an order where each one's inputs are computed before it runs."""

    def needs(unit):
        if isinstance(unit, _Block):
            return set(unit.inputs)
        return {id(x) for x in unit.input_tensors}

    def makes(unit):
        if isinstance(unit, _Block):
            return {id(x) for node in unit.nodes for x in node.outputs}
        return {id(x) for x in unit.outputs}

    available = {id(x) for x in model.inputs}
    ordered, pending = [], list(units)
    while pending:
        ready = [unit for unit in pending if needs(unit) <= available]
        if not ready:
            break  # the rest is not computable from the inputs (Keras skips it too)
        for unit in ready:
            ordered.append(unit)
            available |= makes(unit)
        pending = [unit for unit in pending if not any(unit is r for r in ready)]
    return ordered
