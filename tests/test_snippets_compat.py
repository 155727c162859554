"""bert4keras snippets names that ported scripts import: open, uniout, parallel_apply, helpers."""

import builtins
import itertools
import json
import multiprocessing
import os
import sys
import threading

import numpy as np
import pytest

from kerasbert import snippets
from kerasbert.errors import SnippetError
from kerasbert.snippets import (
    convert_to_str,
    convert_to_unicode,
    is_one_of,
    lowercase_and_normalize,
    orthogonally_resize,
    parallel_apply,
    parallel_apply_generator,
    string_matching,
)
from kerasbert.snippets import open as b4k_open
from kerasbert.snippets.parallel import _RemoteTraceback

# JAX (imported by other tests in this process) warns at every fork; the functions forked
# here use neither JAX nor Keras, which is the documented safe use.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")

SAFETY_SECONDS = 60  # only so that a broken implementation fails instead of hanging
LINES = ["第一行：你好，世界\n", "second line\n", "\n", "三ü€😀 mixed\n", "最后一行没有换行"]

# -- open ------------------------------------------------------------------------------------


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes("".join(LINES).encode("utf-8"))
    return str(path)


def test_open_reads_and_writes_as_python_open(tmp_path, text_file):
    with builtins.open(text_file, encoding="utf-8") as f:
        expected = f.read()
    assert b4k_open(text_file, encoding="utf-8").read() == expected
    assert list(b4k_open(text_file, encoding="utf-8")) == LINES
    with b4k_open(text_file, encoding="utf-8") as f:
        assert f.readline() == LINES[0]
        position = f.tell()
        assert f.readlines() == LINES[1:]
        f.seek(position)
        assert next(f) == LINES[1] and f.next() == LINES[2]
        assert f.name == text_file and f.mode == "r" and f.encoding == "utf-8"
    assert f.closed
    with b4k_open(text_file, "rb") as f:
        assert f.read() == "".join(LINES).encode("utf-8")

    out = str(tmp_path / "out.txt")
    with b4k_open(out, "w", encoding="utf-8") as f:
        assert f.write("写入\n") == 3
        f.writelines(["a\n", "b\n"])
    with b4k_open(out, "a", encoding="utf-8") as f:
        f.write("c\n")
    with builtins.open(out, encoding="utf-8") as f:
        assert f.read() == "写入\na\nb\nc\n"
    # Python's default encoding, like the builtin, when none is given.
    with builtins.open(out) as default, b4k_open(out) as wrapped:
        assert wrapped.encoding == default.encoding
    with pytest.raises(FileNotFoundError):
        b4k_open(str(tmp_path / "missing.txt"))


def test_open_json_dump_and_load_without_closing(tmp_path):
    """bert4keras scripts write ``json.dump(obj, open(path, "w"))``: the file is flushed and
    closed when the object is released, as with the builtin."""
    path = str(tmp_path / "order.json")
    data = {"顺序": [3, 1, 2]}
    json.dump(data, b4k_open(path, "w", encoding="utf-8"), ensure_ascii=False)
    assert json.load(b4k_open(path, encoding="utf-8")) == data
    json.dump([1, 2], b4k_open(path, "w"), indent=4)
    assert json.load(b4k_open(path)) == [1, 2]


def test_open_does_not_shadow_the_builtin_elsewhere():
    import kerasbert.snippets.decoders
    import kerasbert.snippets.files
    import kerasbert.snippets.text

    assert snippets.open is kerasbert.snippets.files.open is not builtins.open
    assert "open" not in snippets.__all__  # ``import *`` keeps the builtin
    for module in (kerasbert.snippets.text, kerasbert.snippets.decoders):
        assert "open" not in vars(module)
    namespace = {}
    exec("from kerasbert.snippets import *", namespace)
    assert "open" not in namespace and "parallel_apply" in namespace


def test_open_indexable_random_access_on_multibyte_utf8(text_file):
    f = b4k_open(text_file, encoding="utf-8", indexable=True)
    assert len(f) == len(LINES)
    # Byte offsets: the multi-byte characters count 3 or 4 bytes each.
    starts = np.cumsum([0] + [len(line.encode("utf-8")) for line in LINES[:-1]])
    assert f.offsets == starts.tolist()
    for i in [3, 0, 4, 1, 2, 3, 0]:
        assert f[i] == LINES[i]
    assert f[-1] == LINES[-1] and f[-5] == LINES[0]
    assert f[1:4] == LINES[1:4] and f[::-2] == LINES[::-2]
    with pytest.raises(IndexError):
        f[len(LINES)]
    f.seek(0)
    assert list(f) == LINES  # iteration still reads the whole file
    f.close()
    # Binary mode: the same lines as bytes.
    with b4k_open(text_file, "rb", indexable=True) as f:
        assert f[3] == LINES[3].encode("utf-8")


def test_open_indexable_crlf_and_other_encodings(tmp_path):
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes("甲\r\n乙\r\n丙".encode())
    with b4k_open(str(crlf), encoding="utf-8", indexable=True) as f:
        assert [f[2], f[0], f[1]] == ["丙", "甲\n", "乙\n"]  # as text mode reads them
    for encoding in ["gbk", "utf-16", "utf-8-sig"]:
        path = tmp_path / f"{encoding}.txt"
        text = "".join(line for line in LINES if encoding != "gbk" or "😀" not in line)
        path.write_bytes(text.encode(encoding))
        with builtins.open(path, encoding=encoding) as f:
            expected = f.readlines()
        with b4k_open(str(path), encoding=encoding, indexable=True) as f:
            assert len(f) == len(expected)
            assert [f[i] for i in reversed(range(len(f)))] == expected[::-1], encoding


def test_open_indexable_cache(tmp_path, text_file, monkeypatch):
    cache = str(tmp_path / "lines.index.json")
    with b4k_open(text_file, encoding="utf-8", indexable=cache) as f:
        offsets = f.offsets
    with builtins.open(cache) as f:
        assert json.load(f) == offsets

    def no_indexing(self):
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr(snippets.files.open, "_byte_offsets", no_indexing)
    with b4k_open(text_file, encoding="utf-8", indexable=cache) as f:
        assert f[3] == LINES[3] and len(f) == len(LINES)

    # bert4keras's cache: text-mode tell() positions, which for UTF-8 are byte offsets.
    bert4keras_cache = str(tmp_path / "bert4keras.json")
    with builtins.open(text_file, encoding="utf-8") as f:
        positions, position = [], f.tell()
        while f.readline():
            positions.append(position)
            position = f.tell()
    with builtins.open(bert4keras_cache, "w") as f:
        json.dump(positions, f)
    with b4k_open(text_file, encoding="utf-8", indexable=bert4keras_cache) as f:
        assert [f[i] for i in range(len(f))] == LINES

    stale = str(tmp_path / "stale.json")
    with builtins.open(stale, "w") as f:
        json.dump([0, 10, 10_000], f)
    with pytest.raises(SnippetError, match="Delete the cache"):
        b4k_open(text_file, encoding="utf-8", indexable=stale)


def test_open_errors(tmp_path, text_file):
    with pytest.raises(SnippetError, match="opened for reading"):
        b4k_open(str(tmp_path / "new.txt"), "w", indexable=True)
    f = b4k_open(text_file, encoding="utf-8")
    with pytest.raises(SnippetError, match="indexable=True"):
        f[0]
    with pytest.raises(TypeError, match="indexable=True"):  # as len() of Python's file
        len(f)
    f.close()


# -- uniout ------------------------------------------------------------------------------------


def test_uniout_imports_and_changes_nothing(capsys):
    hooks = (builtins.print, sys.displayhook, sys.stdout, builtins.repr)
    from kerasbert.snippets import uniout

    assert [name for name in vars(uniout) if not name.startswith("__")] == []
    assert (builtins.print, sys.displayhook, sys.stdout, builtins.repr) == hooks
    print(["你好"])
    assert capsys.readouterr().out == "['你好']\n"


# -- parallel_apply ----------------------------------------------------------------------------


def _square(x):
    return x * x


def _fail_on_three(x):
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def _first_draw(_):
    return os.getpid(), float(np.random.random())


def _exit_abruptly(x):
    if x == 2:
        os._exit(3)
    return x


def _no_children_left():
    children = multiprocessing.active_children()  # also reaps the finished ones
    return not [p for p in children if p.name.startswith("kerasbert-parallel")]


def _no_worker_threads_left():
    return not [t for t in threading.enumerate() if t.name.startswith("kerasbert-parallel")]


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_parallel_apply_processes(start_method):
    if start_method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {start_method} here")
    items = list(range(20))
    ordered = parallel_apply(
        _square, items, 2, 3, unordered=False, start_method=start_method
    )  # fmt: skip
    assert ordered == [x * x for x in items]
    unordered = parallel_apply(_square, iter(items), 3, 1, start_method=start_method)
    assert sorted(unordered) == ordered
    received = []
    assert parallel_apply(_square, items, 2, 2, callback=received.append) is None
    assert sorted(received) == ordered
    pairs = list(parallel_apply_generator(_square, items, 2, 4, start_method=start_method))
    assert sorted(pairs) == [(i, i * i) for i in items]
    assert _no_children_left()


def test_parallel_apply_fork_takes_closures():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")
    offset = 100
    result = parallel_apply(lambda x: x + offset, range(5), 2, 2, unordered=False,
                            start_method="fork")  # fmt: skip
    assert result == [100, 101, 102, 103, 104]
    assert _no_children_left()


def test_parallel_apply_spawn_refuses_a_lambda_clearly():
    with pytest.raises(SnippetError, match="picklable"):
        parallel_apply(lambda x: x, range(3), 2, 2, start_method="spawn")
    assert _no_children_left()


def test_parallel_apply_generator_yields_as_workers_finish():
    release = threading.Event()

    def func(x):
        if x == 0:
            assert release.wait(SAFETY_SECONDS)
        return x * 10

    generator = parallel_apply_generator(func, [0, 1], workers=2, max_queue_size=2, dummy=True)
    assert next(generator) == (1, 10)  # item 0 cannot finish before this
    release.set()
    assert list(generator) == [(0, 0)]
    assert _no_worker_threads_left()


def _reverse_finishing_func(n):
    """Item k finishes only after item k + 1 did; returns (item, rank of finishing)."""
    done = [threading.Event() for _ in range(n)]
    ranks, lock = itertools.count(), threading.Lock()

    def func(x):
        if x + 1 < n:
            assert done[x + 1].wait(SAFETY_SECONDS)
        with lock:
            rank = next(ranks)
        done[x].set()
        return x, rank

    return func


def test_parallel_apply_ordered_and_unordered_with_and_without_callback():
    n = 4
    finished_in_reverse = [(x, n - 1 - x) for x in range(n)]
    kwargs = {"workers": n, "max_queue_size": 1, "dummy": True}

    assert parallel_apply(_reverse_finishing_func(n), range(n), unordered=False, **kwargs) == (
        finished_in_reverse
    )
    unordered = parallel_apply(_reverse_finishing_func(n), range(n), **kwargs)
    assert sorted(unordered) == finished_in_reverse

    received = []
    assert (
        parallel_apply(
            _reverse_finishing_func(n), range(n), callback=received.append, unordered=False,
            **kwargs,
        )
        is None
    )  # fmt: skip
    assert received == finished_in_reverse  # held back until the input order allows

    # Unordered with a callback: results as they arrive. Item 0 waits for the callback to
    # have received item 1's result, so the order is fixed.
    got_one, received = threading.Event(), []

    def func(x):
        if x == 0:
            assert got_one.wait(SAFETY_SECONDS)
        return x

    def callback(result):
        received.append(result)
        if result == 1:
            got_one.set()

    parallel_apply(func, [0, 1], 2, 2, callback=callback, dummy=True)
    assert received == [1, 0]
    assert _no_worker_threads_left()


@pytest.mark.parametrize("dummy", [True, False])
def test_parallel_apply_error_in_func_reaches_the_caller(dummy):
    with pytest.raises(ValueError, match="bad item 3") as raised:
        parallel_apply(_fail_on_three, range(50), 2, 2, dummy=dummy, unordered=False)
    if not dummy:
        cause = raised.value.__cause__
        assert isinstance(cause, _RemoteTraceback) and "_fail_on_three" in str(cause)
    with pytest.raises(ValueError, match="bad item 3"):
        list(parallel_apply_generator(_fail_on_three, itertools.count(), 2, 2, dummy=dummy))
    assert _no_children_left() and _no_worker_threads_left()


def test_parallel_apply_error_in_callback_stops_the_workers():
    def callback(result):
        if result == 9:
            raise KeyError("callback failed")

    with pytest.raises(KeyError, match="callback failed"):
        parallel_apply(_square, itertools.count(), 2, 2, callback=callback, unordered=False)
    assert _no_children_left()


def test_parallel_apply_dead_worker_is_reported():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")
    with pytest.raises(SnippetError, match="exit code 3"):
        parallel_apply(_exit_abruptly, range(10), 2, 2, start_method="fork")
    assert _no_children_left()


def test_parallel_apply_unpicklable_item():
    with pytest.raises(SnippetError, match="item 1 .*cannot be pickled"):
        parallel_apply(_square, [1, threading.Lock()], 2, 2)
    assert _no_children_left()


def test_parallel_apply_generator_takes_items_as_workers_get_free():
    consumed = []

    def endless():
        for i in itertools.count():
            consumed.append(i)
            yield i

    generator = parallel_apply_generator(_square, endless(), 2, 3, dummy=True)
    first = [next(generator) for _ in range(5)]
    assert len(consumed) <= 5 + 3 + 2  # results taken + queue + workers
    generator.close()
    assert len(first) == 5 and all(r == i * i for i, r in first)
    assert _no_worker_threads_left()


def test_parallel_apply_random_seeds():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")

    def first_draws(random_seeds):
        np.random.seed(0)
        draws = {}
        for pid, draw in parallel_apply(
            _first_draw, range(40), 2, 2, random_seeds=random_seeds, start_method="fork"
        ):
            draws.setdefault(pid, draw)  # one worker's results arrive in its order
        return list(draws.values())

    inherited = np.random.RandomState(0).random()
    draws = first_draws(False)  # every worker draws what the parent would have drawn
    assert draws and draws == [inherited] * len(draws)
    assert inherited not in first_draws(True)
    seeded = {np.random.RandomState(s).random() for s in (11, 12)}
    draws = first_draws([11, 12])
    assert set(draws) <= seeded and len(set(draws)) == len(draws)


def test_parallel_apply_arguments_checked_at_the_call():
    with pytest.raises(SnippetError, match="workers"):
        parallel_apply_generator(_square, [1], 0, 2)
    with pytest.raises(SnippetError, match="max_queue_size"):
        parallel_apply(_square, [1], 2, None)
    with pytest.raises(SnippetError, match="start_method"):
        parallel_apply(_square, [1], 2, 2, start_method="telepathy")


# -- the small helpers -------------------------------------------------------------------------


def test_convert_to_unicode_and_str():
    for convert in (convert_to_unicode, convert_to_str):
        assert convert("中文".encode()) == "中文"
        assert convert("中文".encode("gbk"), encoding="gbk") == "中文"
        assert convert(b"ok\xff") == "ok"  # undecodable bytes dropped by default
        with pytest.raises(UnicodeDecodeError):
            convert(b"ok\xff", errors="strict")
        assert convert("already text") == "already text"
        assert convert(5) == 5


def test_lowercase_and_normalize():
    assert lowercase_and_normalize("Héllo WÖRLD Ñandú") == "hello world nandu"
    assert lowercase_and_normalize("中文ABC") == "中文abc"
    # Composed and decomposed forms give the same result.
    assert lowercase_and_normalize("e\u0301") == lowercase_and_normalize("\u00e9") == "e"


def test_string_matching():
    assert string_matching("bert/encoder/LayerNorm/beta", ["beta", "gamma", "bias"])
    assert not string_matching("bert/encoder/dense/kernel", ["beta", "gamma", "bias"])
    assert string_matching("abc", ["a.c"])  # keywords are regular expressions
    assert not string_matching("a.c", ["^b"]) and not string_matching("x", [])
    with pytest.raises(SnippetError, match="re.escape"):
        string_matching("x", ["("])


def test_is_one_of_compares_identity():
    a, b = np.zeros(3), np.zeros(3)
    with pytest.raises(ValueError):
        a in [b, a]  # noqa: B015 (the comparison that fails)
    assert is_one_of(a, [b, a]) and not is_one_of(np.zeros(3), [a, b])
    assert not is_one_of(1, [])


def test_orthogonally_resize_hand_computed():
    a = np.array([[1.0, 2.0, 3.0, 4.0]])
    # Growing (window 2): blocks [1 2][3 4] each repeated twice, cut to 6, norm kept.
    grown = orthogonally_resize(a, (1, 6))
    expected = np.array([[1.0, 2.0, 1.0, 2.0, 3.0, 4.0]]) * np.sqrt(30 / 35)
    np.testing.assert_allclose(grown, expected)
    # Shrinking: cut, norm kept.
    shrunk = orthogonally_resize(a, (1, 3))
    np.testing.assert_allclose(shrunk, np.array([[1.0, 2.0, 3.0]]) * np.sqrt(30 / 14))
    # Both axes of a matrix, window 1: rows then columns repeated in place.
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = orthogonally_resize(m, (3, 3), window=1)
    tiled = np.array([[1.0, 1.0, 2.0], [1.0, 1.0, 2.0], [3.0, 3.0, 4.0]])
    np.testing.assert_allclose(out, tiled * np.sqrt(30 / 46))
    np.testing.assert_allclose(np.linalg.norm(out), np.linalg.norm(m))
    # One axis grows, one shrinks; unchanged shape is the identity.
    w = np.arange(1.0, 9.0).reshape(2, 4)
    np.testing.assert_allclose(orthogonally_resize(w, (2, 4)), w)
    out = orthogonally_resize(w, (4, 2))
    # The two rows form one block of window 2, repeated; then the columns are cut.
    rows = np.array([[1.0, 2.0], [5.0, 6.0], [1.0, 2.0], [5.0, 6.0]])
    np.testing.assert_allclose(out, rows * np.linalg.norm(w) / np.linalg.norm(rows))
    assert not np.any(orthogonally_resize(np.zeros((2, 2)), (4, 4)))


def test_orthogonally_resize_errors():
    with pytest.raises(SnippetError, match="axes"):
        orthogonally_resize(np.ones((2, 2)), (4,))
    with pytest.raises(SnippetError, match="multiple of window"):
        orthogonally_resize(np.ones((3, 2)), (6, 2))
    with pytest.raises(SnippetError, match="positive"):
        orthogonally_resize(np.ones((2, 2)), (0, 2))
