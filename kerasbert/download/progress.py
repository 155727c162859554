"""The text progress bar :func:`kerasbert.download.download` draws on stderr."""

import sys
import time


class _ProgressBar:
    """A one-line text progress bar on stderr, redrawn at most every 0.1 s."""

    width = 30

    def __init__(self, label, mode):
        stream = sys.stderr
        if mode == "always":
            self.stream = stream
        elif mode:
            isatty = getattr(stream, "isatty", None)
            self.stream = stream if isatty is not None and isatty() else None
        else:
            self.stream = None
        self.label = label
        self.start = time.monotonic()
        self.first = None
        self.last_draw = 0.0
        self.state = None
        self.shown = None

    def update(self, done, total):
        if self.stream is None:
            return
        if self.first is None:
            self.first = done
        self.state = (done, total)
        now = time.monotonic()
        if now - self.last_draw >= 0.1 or (total is not None and done >= total):
            self.last_draw = now
            self._draw(now)

    def _draw(self, now):
        done, total = self.state
        rate = (done - self.first) / max(now - self.start, 1e-6)
        if total:
            filled = min(self.width, self.width * done // total)
            bar = "#" * filled + "." * (self.width - filled)
            text = (
                f"{self.label} |{bar}| {100 * done / total:5.1f}% "
                f"{_human(done)}/{_human(total)} {_human(rate)}/s"
            )
        else:
            text = f"{self.label} {_human(done)} {_human(rate)}/s"
        self.stream.write("\r" + text + " " * 4)
        self.stream.flush()
        self.shown = self.state

    def close(self):
        if self.stream is None or self.state is None:
            return
        if self.shown != self.state:
            self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()
        self.stream = None


def _human(count):
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"
