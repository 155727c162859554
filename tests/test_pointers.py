"""GlobalPointer heads and sin/cos position encodings against numpy, masks, saving."""

import keras
import numpy as np
import pytest
from keras import ops

from kerasbert.backend import apply_rotary_position_embeddings, sinusoidal_embeddings
from kerasbert.errors import ConfigError, KerasBertError
from kerasbert.layers.embeddings import Embedding
from kerasbert.layers.pointers import EfficientGlobalPointer, GlobalPointer
from kerasbert.layers.position import SinusoidalPositionEmbedding
from kerasbert.layers.relative import sinusoidal_relative_table
from kerasbert.losses import global_pointer_crossentropy

rng = np.random.default_rng(0)
NEG = -1e12


def _np_sinusoidal(positions, dim):
    positions = np.asarray(positions, np.float64)[..., None]
    angles = positions / 10000.0 ** (np.arange(0, dim, 2) / dim)
    out = np.zeros(positions.shape[:-1] + (dim,))
    out[..., 0::2], out[..., 1::2] = np.sin(angles), np.cos(angles)
    return out


def _np_rope(x):
    """Rotate channel pairs (2i, 2i+1) of x (batch, seq, ..., d) by position * theta_i."""
    d, n = x.shape[-1], x.shape[1]
    theta = 10000.0 ** (-np.arange(0, d, 2) / d)
    angle = np.arange(n)[:, None] * theta  # (seq, d/2)
    angle = angle.reshape((1, n) + (1,) * (x.ndim - 3) + (d // 2,))
    cos, sin = np.cos(angle), np.sin(angle)
    out = np.empty_like(x, dtype=np.float64)
    out[..., 0::2] = x[..., 0::2] * cos - x[..., 1::2] * sin
    out[..., 1::2] = x[..., 1::2] * cos + x[..., 0::2] * sin
    return out


def _np_mask(logits, mask, tril):
    n = logits.shape[-1]
    keep = np.ones(logits.shape, bool)
    if mask is not None:
        keep &= mask[:, None, :, None] & mask[:, None, None, :]
    if tril:
        keep &= np.triu(np.ones((n, n), bool))[None, None]
    return np.where(keep, logits, NEG), keep


def _np_global_pointer(layer, x, mask):
    w = {v.path.split("/", 1)[1]: v.numpy().astype(np.float64) for v in layer.weights}
    b, n, _ = x.shape
    h = x @ w["query_key/kernel"] + w.get("query_key/bias", 0.0)
    h = h.reshape(b, n, layer.heads, 2 * layer.head_size)
    q, k = h[..., : layer.head_size], h[..., layer.head_size :]
    if layer.RoPE:
        q, k = _np_rope(q), _np_rope(k)
    logits = np.einsum("bmhd,bnhd->bhmn", q, k) / np.sqrt(layer.head_size)
    return _np_mask(logits, mask, layer.tril_mask)


def _np_efficient_global_pointer(layer, x, mask):
    w = {v.path.split("/", 1)[1]: v.numpy().astype(np.float64) for v in layer.weights}
    h = x @ w["query_key/kernel"] + w["query_key/bias"]
    q, k = h[..., 0::2], h[..., 1::2]
    if layer.RoPE:
        q, k = _np_rope(q), _np_rope(k)
    logits = np.einsum("bmd,bnd->bmn", q, k) / np.sqrt(layer.head_size)
    bias = (h @ w["head_bias/kernel"] + w["head_bias/bias"]) / 2  # (b, n, 2 * heads)
    start, end = bias[..., 1::2], bias[..., 0::2]  # (b, n, heads)
    logits = (
        logits[:, None]
        + start.transpose(0, 2, 1)[:, :, :, None]
        + end.transpose(0, 2, 1)[:, :, None, :]
    )
    return _np_mask(logits, mask, layer.tril_mask)


def _check(y, expected, keep):
    y = ops.convert_to_numpy(y)
    np.testing.assert_allclose(y[keep], expected[keep], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y[~keep], NEG, rtol=1e-6)


MASK = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"RoPE": False}, {"tril_mask": False}, {"use_bias": False, "RoPE": False}],
)
def test_global_pointer_matches_numpy(kwargs):
    layer = GlobalPointer(heads=3, head_size=4, **kwargs)
    x = rng.normal(size=(2, 6, 8)).astype("float32")
    y = layer(x, mask=MASK)
    assert y.shape == (2, 3, 6, 6)
    _check(y, *_np_global_pointer(layer, x, MASK))
    # No mask: only the lower triangle (if any) is masked.
    _check(layer(x), *_np_global_pointer(layer, x, None))


@pytest.mark.parametrize("kwargs", [{}, {"RoPE": False, "tril_mask": False}])
def test_efficient_global_pointer_matches_numpy(kwargs):
    layer = EfficientGlobalPointer(heads=3, head_size=4, name="egp", **kwargs)
    x = rng.normal(size=(2, 6, 8)).astype("float32")
    _check(layer(x, mask=MASK), *_np_efficient_global_pointer(layer, x, MASK))
    assert [v.path for v in layer.weights] == [
        "egp/query_key/kernel",
        "egp/query_key/bias",
        "egp/head_bias/kernel",
        "egp/head_bias/bias",
    ]


def test_global_pointer_bad_head_size():
    with pytest.raises(ConfigError, match="even head_size"):
        GlobalPointer(heads=2, head_size=5)
    GlobalPointer(heads=2, head_size=5, RoPE=False)  # fine without RoPE


def test_sinusoidal_values():
    positions = np.array([[0, 1, 2, 7], [3, 3, 0, 100]])
    e = ops.convert_to_numpy(sinusoidal_embeddings(positions, 6))
    np.testing.assert_allclose(e, _np_sinusoidal(positions, 6), atol=2e-5)
    # Same formula as NEZHA's relative table (an independent implementation).
    np.testing.assert_allclose(
        ops.convert_to_numpy(sinusoidal_embeddings(np.arange(9), 8)),
        sinusoidal_relative_table(4, 8),
        atol=1e-5,
    )
    with pytest.raises(KerasBertError):
        sinusoidal_embeddings(np.arange(3), 5)


def test_rope_matches_numpy_and_is_relative():
    x = rng.normal(size=(2, 7, 3, 8)).astype("float32")
    table = sinusoidal_embeddings(np.arange(7)[None], 8)
    y = ops.convert_to_numpy(apply_rotary_position_embeddings(table, x))
    np.testing.assert_allclose(y, _np_rope(x.astype(np.float64)), atol=1e-5)
    # q_m · k_n depends on m - n only: the same vectors placed at shifted positions.
    q = np.broadcast_to(rng.normal(size=8), (1, 7, 8)).astype("float32")
    k = np.broadcast_to(rng.normal(size=8), (1, 7, 8)).astype("float32")
    rq, rk = (ops.convert_to_numpy(t) for t in apply_rotary_position_embeddings(table, q, k))
    dots = rq[0] @ rk[0].T
    np.testing.assert_allclose(dots[1, 3], dots[4, 6], atol=1e-5)
    np.testing.assert_allclose(dots[5, 0], dots[6, 1], atol=1e-5)


def test_sinusoidal_position_embedding_merge_modes():
    x = rng.normal(size=(2, 5, 6)).astype("float32")
    e = _np_sinusoidal(np.arange(5), 6)[None]

    def run(mode, inputs=x, **kw):
        return ops.convert_to_numpy(SinusoidalPositionEmbedding(6, mode, **kw)(inputs))

    np.testing.assert_allclose(run("add"), x + e, atol=1e-5)
    np.testing.assert_allclose(run("mul"), x * (e + 1), atol=1e-5)
    np.testing.assert_allclose(run("zero"), np.broadcast_to(e, (2, 5, 6)), atol=1e-5)
    np.testing.assert_allclose(run("concat"), np.concatenate([x, np.repeat(e, 2, 0)], -1), 1e-5)
    ids = np.array([[4, 3, 2, 1, 0], [0, 0, 1, 1, 2]])
    got = run("add", [x, ids], custom_position_ids=True)
    np.testing.assert_allclose(got, x + _np_sinusoidal(ids, 6), atol=1e-5)
    with pytest.raises(ConfigError, match="merge_mode"):
        SinusoidalPositionEmbedding(6, "sum")


def test_sinusoidal_position_embedding_keeps_mask():
    ids = keras.Input((None,), dtype="int32")
    h = Embedding(10, 4, mask_zero=True)(ids)
    out = SinusoidalPositionEmbedding(4)(h)
    assert out._keras_mask is not None
    pointer = GlobalPointer(1, 4)(out)
    assert getattr(pointer, "_keras_mask", None) is None


SERIALIZE_CASES = [
    (GlobalPointer, {"heads": 2, "head_size": 4, "tril_mask": False}, False),
    (EfficientGlobalPointer, {"heads": 2, "head_size": 4, "use_bias": False}, False),
    (SinusoidalPositionEmbedding, {"output_dim": 8, "merge_mode": "mul"}, False),
    (
        SinusoidalPositionEmbedding,
        {"output_dim": 4, "merge_mode": "concat", "custom_position_ids": True},
        True,
    ),
]


@pytest.mark.parametrize("cls,kwargs,with_ids", SERIALIZE_CASES)
def test_serialize_round_trip(cls, kwargs, with_ids):
    layer = cls(**kwargs)
    x = rng.normal(size=(2, 6, 8)).astype("float32")  # the shape used above: no recompiling
    inputs = [x, np.arange(6)[None] + 3] if with_ids else x
    y = ops.convert_to_numpy(layer(inputs))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is cls and clone.get_config() == layer.get_config()
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(ops.convert_to_numpy(clone(inputs)), y)


def _pointer_model():
    ids = keras.Input((None,), dtype="int32", name="ids")
    h = Embedding(20, 8, mask_zero=True, name="emb")(ids)
    h = SinusoidalPositionEmbedding(8, name="pos")(h)
    gp = GlobalPointer(2, 4, name="gp")(h)
    egp = EfficientGlobalPointer(2, 4, name="egp")(h)
    return keras.Model(ids, [gp, egp])


def test_model_with_pointer_heads_saves_and_loads(tmp_path):
    model = _pointer_model()
    model.compile("adam", loss=global_pointer_crossentropy)
    ids = np.array([[2, 5, 7, 0, 0], [3, 4, 5, 6, 9]])
    labels = np.zeros((2, 2, 5, 5), "float32")
    labels[0, 0, 0, 1] = labels[1, 1, 2, 4] = 1
    model.fit(ids, [labels, labels], epochs=1, verbose=0)
    before = model.predict(ids, verbose=0)
    # Padding (id 0) masks the rows and columns of positions 3 and 4 of the first example.
    assert (before[0][0, :, 3:, :] < -1e11).all() and (before[1][0, :, :, 3:] < -1e11).all()
    path = tmp_path / "pointer.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("gp"), GlobalPointer)
    assert isinstance(loaded.get_layer("egp"), EfficientGlobalPointer)
    for a, b in zip(before, loaded.predict(ids, verbose=0)):
        np.testing.assert_array_equal(a, b)
