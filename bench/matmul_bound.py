"""The encoder's matrix products alone, compiled by XLA: a floor under any JAX model's time.

A forward pass of BERT, ALBERT, NEZHA, RoFormer (v1 and v2) or ELECTRA costs the matmuls
that ``peers.model_flops`` counts, plus cheaper work (embeddings, softmax, layer norm,
GELU, biases, head transposes, RoFormer's rotations). :class:`MatmulChain` is one
``jax.jit`` function that performs exactly those matmuls, in the same shapes and number,
one after another, and nothing else: no elementwise work, no transposes (reshapes stand in
for them), no bias. However a JAX model lays out the rest of its work, XLA must still run
these products, so the time of this chain is a floor under any float32 implementation
built on the same products and XLA's kernels (fusing q, k and v into one product measured
slower for BERT-base). For NEZHA it is the floor of the per-pair formulation only:
kerasbert's per-distance one does twice the relative-term FLOPs in larger products and is
faster at 2 x 512. RoFormer's rotary embedding is elementwise (it adds no product),
RoFormer v2's missing biases and norm weights are elementwise too, and ELECTRA-base
(embedding size = hidden size) has no embedding projection: their chains are BERT's; an
ELECTRA with a smaller embedding size adds ALBERT's projection, with unshared layers.
``bench_forward.py`` times it beside the models ("xla matmuls only") and
``bench_encode.py`` over the least-padded batch schedule; ratios such as "keras-hub / xla
matmuls only" then say the most a JAX model could gain on keras-hub.

The data flow keeps every value near unit spread (no overflow, no denormals to slow the
products down): queries come from the running activations, keys and values from a fixed
second input, so that each layer is linear in its input (scores computed from the
activations twice would cube them every layer and overflow within a dozen layers), and
the weights are scaled to unit gain.
"""

from __future__ import annotations

import numpy as np


class MatmulChain:
    """The encoder's matmuls for any ``(batch, seq_len)``, one compilation per shape.

    Per layer: q, k, v and output projections ``(B*T, H) @ (H, H)``, attention scores
    ``(B*heads, T, d) @ (B*heads, d, T)`` and context ``(B*heads, T, T) @ (B*heads, T, d)``,
    the feed-forward pair ``(B*T, H) @ (H, I)`` and ``(B*T, I) @ (I, H)``. NEZHA adds its
    two relative-position products batched over the query position, ``(T, B*heads, d) @
    (T, d, T)`` and ``(T, B*heads, T) @ (T, T, d)``; ALBERT adds the ``(B*T, E) @ (E, H)``
    embedding projection and shares one layer's weights; ELECTRA adds the same projection
    when ``E != H``. ``"roformer"`` and ``"roformer_v2"`` are BERT's chain.

    Args:
        layers, hidden, heads, intermediate: the encoder's sizes.
        family: ``"bert"``, ``"albert"``, ``"nezha"``, ``"roformer"``, ``"roformer_v2"``
            or ``"electra"``.
        embedding_size: ALBERT's factorised embedding size (ELECTRA's, for ``"electra"``).
        typical_len: sequence length the value weights are scaled for (keeps the context
            near unit spread for lengths of that order).
        seed: weights' random seed.

    ``inputs(batch, seq_len)`` gives the arguments of one call and ``__call__(*inputs)``
    returns ``(batch, seq_len, hidden)``.
    """

    def __init__(
        self,
        layers,
        hidden,
        heads,
        intermediate,
        family="bert",
        embedding_size=128,
        typical_len=128,
        seed=0,
    ):
        import jax
        import jax.numpy as jnp

        self.layers, self.hidden, self.heads = layers, hidden, heads
        self.family, self.embedding_size = family, embedding_size
        self.size = hidden // heads
        self.rng = np.random.default_rng(seed)

        def weight(rows, cols, scale=1.0):
            w = self.rng.standard_normal((rows, cols)).astype("float32")
            return jnp.asarray(w * (scale / np.sqrt(rows)))

        def layer_weights():
            return {
                "q": weight(hidden, hidden, self.size**-0.5),  # scores near unit spread
                "k": weight(hidden, hidden),
                "v": weight(hidden, hidden, typical_len**-0.5),  # so is the context
                "o": weight(hidden, hidden),
                "up": weight(hidden, intermediate),
                "down": weight(intermediate, hidden),
            }

        projected = family == "albert" or (family == "electra" and embedding_size != hidden)
        count = 1 if family == "albert" else layers
        self.weights = [layer_weights() for _ in range(count)]
        self.projection = weight(embedding_size, hidden) if projected else None
        self.function = jax.jit(self._chain)

    def inputs(self, batch, seq_len):
        """The arguments of one call: embeddings, the keys' and values' source, and NEZHA's
        relative table."""
        import jax.numpy as jnp

        def normal(*shape):
            return jnp.asarray(self.rng.standard_normal(shape).astype("float32"))

        width = self.embedding_size if self.projection is not None else self.hidden
        # ALBERT's layers share weights: one source per layer keeps XLA from computing
        # their (then identical) key and value products once.
        sources = self.layers if self.family == "albert" else 1
        x, source = normal(batch, seq_len, width), normal(sources, batch * seq_len, self.hidden)
        relative = None
        if self.family == "nezha":
            relative = normal(seq_len, seq_len, self.size) / np.sqrt(2 * seq_len)
        return x, source, self.weights, self.projection, relative

    def __call__(self, x, source, weights, projection, relative):
        return self.function(x, source, weights, projection, relative)

    def _chain(self, x, source, weights, projection, relative):
        batch, seq_len = x.shape[:2]
        tokens, groups, size = batch * seq_len, batch * self.heads, self.size
        x = x.reshape(tokens, -1)
        if projection is not None:
            x = x @ projection
        for i in range(self.layers):
            w = weights[i % len(weights)]
            q = (x @ w["q"]).reshape(groups, seq_len, size)
            kv_input = source[i % len(source)]
            k = (kv_input @ w["k"]).reshape(groups, size, seq_len)
            v = (kv_input @ w["v"]).reshape(groups, seq_len, size)
            scores = q @ k
            if relative is not None:
                by_position = q.reshape(seq_len, groups, size)
                relative_keys = relative.transpose(0, 2, 1)
                scores = scores + (by_position @ relative_keys).reshape(scores.shape)
            context = scores @ v
            if relative is not None:
                by_position = scores.reshape(seq_len, groups, seq_len)
                context = context + (by_position @ relative).reshape(context.shape)
            x = context.reshape(tokens, self.hidden) @ w["o"]
            x = (x @ w["up"]) @ w["down"]
        return x.reshape(batch, seq_len, self.hidden)


def forward_candidate(args, family, batch, seq_len, embedding_size=None):
    """A ``bench.common.measure`` candidate builder timing one :class:`MatmulChain` shape
    (``embedding_size``: the family's, default ``args.embedding_size``)."""

    def build():
        chain = MatmulChain(
            args.layers,
            args.hidden,
            args.heads,
            args.intermediate,
            family,
            args.embedding_size if embedding_size is None else embedding_size,
            typical_len=seq_len,
            seed=args.seed,
        )
        arguments = chain.inputs(batch, seq_len)
        state = {}

        def run():
            state["out"] = chain(*arguments).block_until_ready()

        def output():
            return np.asarray(state["out"])

        method = "jax.jit of the encoder's matmuls only"
        return run, output, {"family": family, "method": method, "hidden": args.hidden}

    return build
