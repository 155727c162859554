"""Dense layers whose 16-bit matmuls accumulate in float32."""

import functools

import keras
from keras import ops

LOW_PRECISION = ("bfloat16", "float16")


def _accumulates_in_float32(a, b):
    """Whether ``a`` and ``b`` take the float32-accumulating path: JAX, one 16-bit dtype."""
    dtype = keras.backend.standardize_dtype(a.dtype)
    same = keras.backend.standardize_dtype(b.dtype) == dtype
    return keras.backend.backend() == "jax" and dtype in LOW_PRECISION and same


def mixed_matmul(x, kernel, transpose_kernel=False):
    """``x @ kernel`` (or ``x @ kernel.T``) in float32 when both inputs are 16-bit floats.

    Under ``mixed_bfloat16`` / ``mixed_float16`` Keras multiplies 16-bit operands into a
    16-bit result. XLA:CPU runs that through a float32 fallback (no faster than float32),
    while a 16-bit product with a float32 result maps onto the CPU's bf16 matrix units
    (AMX) and is several times faster; on GPUs it is what cuBLAS does anyway. The gradient
    is taken the same way (16-bit operands, float32 accumulation). Other dtypes and
    backends use ``keras.ops.matmul`` unchanged.

    Args:
        x: ``(..., k)`` inputs.
        kernel: ``(k, n)`` weights, or ``(n, k)`` with ``transpose_kernel=True``.
        transpose_kernel: multiply by the transposed kernel (tied output embeddings).

    Returns:
        ``(..., n)``: float32 for 16-bit inputs on JAX, otherwise the inputs' dtype.

    Example:

    >>> import numpy as np
    >>> x, w = np.ones((2, 3), "float32"), np.ones((3, 4), "float32")
    >>> mixed_matmul(x, w).shape
    (2, 4)
    """
    if not _accumulates_in_float32(x, kernel):
        return ops.matmul(x, ops.transpose(kernel) if transpose_kernel else kernel)
    return _accumulating_matmul(transpose_kernel)(x, kernel)


def _contract(equation, x, y, result_dtype="float32"):
    """``einsum(equation, x, y)`` as one dot, by default with a float32 result.

    XLA:CPU runs a bf16 x bf16 -> f32 dot only in its fast (YNNPACK) path; a dot it sends to
    its generic path instead fails at run time ("Unsupported element type for
    DotThunk::Execute: BF16 x BF16 = F32"). ``jnp.einsum`` leaves the dimension order to XLA
    and some orders took the generic path, so the operands are laid out here in the form that
    takes the fast path in every case tried (tests/test_dense.py): a plain ``(M, K) @ (K, N)``
    without batch dimensions, else a batched ``(B, M, K) @ (B, K, N)`` with the batch first.
    """
    from jax import lax

    inputs, out = equation.split("->")
    lhs, rhs = inputs.split(",")
    batch = [i for i in lhs if i in rhs and i in out]
    summed = [i for i in lhs if i in rhs and i not in out]
    lhs_free = [i for i in lhs if i not in rhs]
    rhs_free = [i for i in rhs if i not in lhs]
    sizes = dict(zip(lhs, x.shape)) | dict(zip(rhs, y.shape))

    def size(indices):
        total = 1
        for i in indices:
            total *= sizes[i]
        return total

    lead = (size(batch),) if batch else ()
    x = x.transpose([lhs.index(i) for i in batch + lhs_free + summed])
    y = y.transpose([rhs.index(i) for i in batch + summed + rhs_free])
    x = x.reshape(lead + (size(lhs_free), size(summed)))
    y = y.reshape(lead + (size(summed), size(rhs_free)))
    n = len(lead)
    dims = (((n + 1,), (n,)), ((0,), (0,)) if batch else ((), ()))
    result = lax.dot_general(x, y, dims, preferred_element_type=result_dtype)
    result = result.reshape([sizes[i] for i in batch + lhs_free + rhs_free])
    order = batch + lhs_free + rhs_free
    return result.transpose([order.index(i) for i in out])


@functools.cache
def _accumulating_matmul(transpose_kernel):
    import jax

    kernel_spec = "nk" if transpose_kernel else "kn"

    def forward(x, kernel):
        rows = _contract(f"mk,{kernel_spec}->mn", x.reshape(-1, x.shape[-1]), kernel)
        return rows.reshape(x.shape[:-1] + rows.shape[-1:])

    @jax.custom_vjp
    def matmul(x, kernel):
        return forward(x, kernel)

    def matmul_fwd(x, kernel):
        return forward(x, kernel), (x, kernel)

    def matmul_bwd(residuals, grad):
        x, kernel = residuals
        rows_x = x.reshape(-1, x.shape[-1])
        rows_grad = grad.astype(x.dtype).reshape(-1, grad.shape[-1])
        dx = _contract(f"mn,{kernel_spec}->mk", rows_grad, kernel).reshape(x.shape)
        dk = _contract(f"mk,mn->{kernel_spec}", rows_x, rows_grad)  # summed over all rows
        return dx.astype(x.dtype), dk.astype(kernel.dtype)

    matmul.defvjp(matmul_fwd, matmul_bwd)
    return matmul


def mixed_einsum(equation, a, b):
    """Two-operand ``keras.ops.einsum`` with float32 accumulation of 16-bit operands.

    Like :func:`mixed_matmul` for contractions such as attention's
    ``"bthd,bshd->bhts"``: on JAX, 16-bit operands give a float32 result, and the
    gradient is computed from 16-bit operands with float32 accumulation too. Every index
    must appear in at least two of the three terms (no index summed within one operand).

    Args:
        equation: ``"lhs,rhs->out"`` without ellipsis or repeated indices in a term.
        a: the left operand.
        b: the right operand.

    Returns:
        The contraction: float32 for 16-bit operands on JAX, otherwise their dtype.

    Example:

    >>> import numpy as np
    >>> q = k = np.ones((1, 3, 2, 4), "float32")
    >>> mixed_einsum("bthd,bshd->bhts", q, k).shape
    (1, 2, 3, 3)
    """
    equation = equation.replace(" ", "")
    if _accumulates_in_float32(a, b):
        return _accumulating_einsum(equation)(a, b)
    dtypes = {keras.backend.standardize_dtype(x.dtype) for x in (a, b)}
    symbolic = any(isinstance(x, keras.KerasTensor) for x in (a, b))
    if (
        keras.backend.backend() == "jax"
        and dtypes <= {"float32", "float64"}
        and len(dtypes) == 1
        and not symbolic
        and _contractible(equation)
    ):
        # The same batch-first dot as the 16-bit path: for attention's products on XLA:CPU
        # whole MiniLM, BERT- and NEZHA-base forwards ran a little faster with it than with
        # the layout jnp.einsum leaves to XLA (bench/README.md, "Design measurements behind
        # the layers"), with bit-identical results.
        return _contract(equation, a, b, result_dtype=None)
    return ops.einsum(equation, a, b)


def _contractible(equation):
    """Whether ``_contract`` can compute ``equation``: every index in two of its terms."""
    inputs, out = equation.split("->")
    lhs, rhs = inputs.split(",")
    terms = (lhs, rhs, out)
    return "." not in equation and all(
        sum(index in term for term in terms) >= 2 for index in set(lhs + rhs + out)
    )


@functools.cache
def _accumulating_einsum(equation):
    import jax

    inputs, out = equation.split("->")
    lhs, rhs = inputs.split(",")
    if not _contractible(equation):
        raise ValueError(
            f"mixed_einsum cannot differentiate {equation!r}: every index must appear in two "
            "of its three terms, without ellipsis."
        )

    @jax.custom_vjp
    def einsum(a, b):
        return _contract(equation, a, b)

    def einsum_fwd(a, b):
        return _contract(equation, a, b), (a, b)

    def einsum_bwd(residuals, grad):
        a, b = residuals
        grad = grad.astype(a.dtype)
        # With every index in two terms, each operand's gradient is the contraction of the
        # output gradient with the other operand.
        da = _contract(f"{out},{rhs}->{lhs}", grad, b)
        db = _contract(f"{out},{lhs}->{rhs}", grad, a)
        return da.astype(a.dtype), db.astype(b.dtype)

    einsum.defvjp(einsum_fwd, einsum_bwd)
    return einsum


@keras.saving.register_keras_serializable(package="kerasbert")
class Dense(keras.layers.Dense):
    """``keras.layers.Dense`` that accumulates 16-bit matmuls in float32 (see
    :func:`mixed_matmul`); bias and activation are applied in float32 before the result
    is cast to the compute dtype. Identical to Keras's layer under float32, with LoRA or
    with quantized kernels (those use Keras's code).

    Args:
        units: output size.
        **kwargs: everything ``keras.layers.Dense`` takes (activation, use_bias,
            initializers, regularizers, dtype, name, ...).

    Example:

    >>> import numpy as np
    >>> layer = Dense(4, activation="relu")
    >>> layer(np.ones((2, 3), "float32")).shape
    (2, 4)
    """

    def call(self, inputs, training=None):
        if self.lora_enabled or self.quantization_mode is not None:
            return super().call(inputs, training=training)
        outputs = mixed_matmul(inputs, ops.convert_to_tensor(self.kernel))
        if self.bias is not None:
            outputs = ops.add(outputs, ops.cast(self.bias, outputs.dtype))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return ops.cast(outputs, self.compute_dtype)
