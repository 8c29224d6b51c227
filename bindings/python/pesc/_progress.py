"""Progress display while waiting.

In order of preference: tqdm.auto (a widget in a notebook, text elsewhere); in
a notebook whose ipywidgets tqdm cannot drive (Debian 12 ships ipywidgets 6,
older than tqdm's widget needs), a plain ipywidgets bar of our own; one text
line on a terminal. A display that fails never fails the job.
"""

from __future__ import annotations

import html
import sys
from typing import Any, Optional


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def _ipywidgets_major() -> int:
    try:
        import ipywidgets
    except ImportError:
        return 0
    return int(ipywidgets.__version__.split(".")[0])


def _tqdm_bar(total: int, done: int, description: str) -> Optional[Any]:
    # In a notebook tqdm.auto draws with ipywidgets 7 or later; on an older
    # one it would show half a widget and fail.
    if _in_notebook() and _ipywidgets_major() < 7:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    try:
        return tqdm(total=total, initial=done, desc=description, unit="rank")
    except Exception:  # tqdm's notebook widget on an ipywidgets it does not support
        return None


class _WidgetBar:
    """An ipywidgets progress bar with a count beside it; works with ipywidgets 6 to 8."""

    def __init__(self, total: int, done: int, description: str) -> None:
        import ipywidgets
        from IPython.display import display

        self._total = total
        self._bar = ipywidgets.IntProgress(min=0, max=max(total, 1), value=done, description=description)
        self._label = ipywidgets.HTML()
        self._show(done)
        display(ipywidgets.HBox([self._bar, self._label]))

    def _show(self, count: int) -> None:
        self._bar.value = count
        self._label.value = f"{count}/{self._total} ranks"

    def update(self, count: int) -> None:
        self._show(count)

    def note(self, text: str) -> None:
        self._label.value = f"{self._bar.value}/{self._total} ranks; {html.escape(text)}"

    def close(self) -> None:
        self._bar.bar_style = "success" if self._bar.value >= self._total else "warning"


def _widget_bar(total: int, done: int, description: str) -> Optional[_WidgetBar]:
    if not _in_notebook():
        return None
    try:
        return _WidgetBar(total, done, description)
    except Exception:  # no ipywidgets, or one we cannot use: fall back to text
        return None


class Bar:
    """Counts finished ranks. Does nothing when disabled or when there is nowhere sensible to draw."""

    def __init__(self, total: int, enabled: bool, done: int = 0, description: str = "pesc") -> None:
        self._total = total
        self._count = done
        self._tqdm: Any = None
        self._widget: Optional[_WidgetBar] = None
        self._text = False
        if not enabled:
            return
        self._tqdm = _tqdm_bar(total, done, description)
        if self._tqdm is None:
            self._widget = _widget_bar(total, done, description)
        if self._tqdm is None and self._widget is None:
            self._text = sys.stderr is not None and sys.stderr.isatty()

    def update(self) -> None:
        self._count += 1
        if self._tqdm is not None:
            self._tqdm.update(1)
        elif self._widget is not None:
            self._widget.update(self._count)
        elif self._text:
            sys.stderr.write(f"\rpesc: {self._count}/{self._total} ranks done")
            sys.stderr.flush()

    def note(self, text: str) -> None:
        """Says something beside the bar, without breaking it."""
        if self._tqdm is not None:
            self._tqdm.write(text, file=sys.stderr)
        elif self._widget is not None:
            self._widget.note(text)
        else:
            sys.stderr.write(("\n" if self._text else "") + text + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._widget is not None:
            self._widget.close()
        elif self._text:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self._tqdm = None
        self._widget = None
        self._text = False
