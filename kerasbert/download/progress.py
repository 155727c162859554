"""The progress of one download, drawn with :func:`kerasbert.progress.progress_bar`.

A download learns its size only from the response headers (and a resumed one starts past
zero), so :class:`DownloadBar` takes absolute ``(done, total)`` updates and opens the bar on
the first one.
"""

from kerasbert.progress import progress_bar

# download(progress=...) -> progress_bar(enabled=...)
_ENABLED = {True: "auto", "auto": "auto", "always": True, False: False, None: False}


class DownloadBar:
    """A byte-counting bar for one file.

    Args:
        label: the file's name.
        progress: True or ``"auto"`` draws in a terminal or a notebook, ``"always"`` draws
            anyway, False never.
    """

    def __init__(self, label, progress):
        self.label = label
        self.enabled = _ENABLED.get(progress, bool(progress))
        self.bar = None

    def update(self, done, total):
        if self.bar is None:
            self.bar = progress_bar(total=total, desc=self.label, unit="B", unit_scale=True,
                                    enabled=self.enabled)  # fmt: skip
        elif total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
