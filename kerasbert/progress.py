"""One progress bar for everything long: downloads, loading, encoding, data preparation.

:func:`progress_bar` returns a ``tqdm.auto`` bar when the optional ``tqdm`` package is
installed (``pip install 'kerasbert[progress]'``): a widget in Jupyter, Colab and Kaggle
(where stderr is no terminal) and a text bar in a terminal. Without tqdm it returns a small
text bar with the same methods. ``enabled`` decides whether anything is drawn: ``True``
draws (also when stderr is not a terminal, e.g. in a notebook), ``"auto"`` draws in a
terminal or a notebook, ``False`` draws nothing (``--quiet``).

Example:

>>> with progress_bar(total=3, desc="steps", enabled=False) as bar:
...     for _ in range(3):
...         bar.update(1)
>>> bar.n
3
"""

import sys
import time


def in_notebook():
    """Whether this Python runs inside a Jupyter kernel (Jupyter, Colab, Kaggle)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # noqa: BLE001 (an IPython without a running shell)
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _has_widgets():
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def _should_draw(enabled, stream):
    if enabled == "auto":
        isatty = getattr(stream, "isatty", None)
        return bool(isatty is not None and isatty()) or in_notebook()
    return bool(enabled)


def progress_bar(total=None, desc="", unit="it", enabled="auto", unit_scale=False):
    """A progress bar with tqdm's methods (``update``, ``set_postfix_str``, ``close``).

    Args:
        total: the count at which the work is done (None when unknown).
        desc: the label in front of the bar.
        unit: what is counted (``"B"`` with ``unit_scale=True`` shows KB/MB).
        enabled: ``True``, ``"auto"`` (a terminal or a notebook) or ``False`` (module
            docstring).
        unit_scale: scale the counts (1.2M instead of 1200000).
    """
    draw = _should_draw(enabled, sys.stderr)
    try:
        if in_notebook() and not _has_widgets():
            from tqdm.std import tqdm  # tqdm.auto would warn "IProgress not found"
        else:
            from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is None or not draw:
        return TextBar(total, desc, unit, draw, unit_scale)
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, disable=not draw,
                file=sys.stderr, dynamic_ncols=True, leave=True)  # fmt: skip


class TextBar:
    """The bar :func:`progress_bar` returns without tqdm: one line on stderr, redrawn at most
    ten times a second, with tqdm's ``n``, ``update``, ``set_postfix_str`` and ``close``."""

    width = 30

    def __init__(self, total=None, desc="", unit="it", draw=True, unit_scale=False):
        self.total, self.desc, self.unit, self.unit_scale = total, desc, unit, unit_scale
        self.stream = sys.stderr if draw else None
        self.n = 0
        self.postfix = ""
        self.start = time.monotonic()
        self.last_draw = 0.0

    def update(self, count=1):
        self.n += count
        now = time.monotonic()
        if now - self.last_draw >= 0.1 or (self.total is not None and self.n >= self.total):
            self.last_draw = now
            self._draw(now)

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text
        if refresh:
            self._draw(time.monotonic())

    def _format(self, count):
        if not self.unit_scale:
            return f"{count:g}"
        for prefix in ("", "K", "M", "G"):
            if abs(count) < 1000:
                return f"{count:.1f}{prefix}" if prefix else f"{count:.0f}"
            count /= 1000
        return f"{count:.1f}T"

    def _draw(self, now):
        if self.stream is None:
            return
        rate = self.n / max(now - self.start, 1e-6)
        if self.total:
            filled = min(self.width, int(self.width * self.n / self.total))
            bar = "#" * filled + "." * (self.width - filled)
            text = (f"{self.desc}: {100 * self.n / self.total:3.0f}%|{bar}| "
                    f"{self._format(self.n)}/{self._format(self.total)}")  # fmt: skip
        else:
            text = f"{self.desc} {self._format(self.n)}"
        text += f" {self._format(rate)} {self.unit}/s"
        if self.postfix:
            text += f", {self.postfix}"
        self.stream.write("\r" + text + " " * 4)
        self.stream.flush()

    def close(self):
        if self.stream is not None:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.stream = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
