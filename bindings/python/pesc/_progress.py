"""Progress display while waiting.

Outside a notebook: tqdm's bar if installed, else one text line on a terminal's
stderr. In a
notebook: one display, updated in place, that always carries a text/plain
line ("pesc: 12/40 ranks done"), so nbconvert, nbclient and any front end
without widgets show plain text. A widget bar is added to that display only
with ipywidgets 7 or later in a real IPython kernel: older ipywidgets (Debian
12 ships 6) open comms that stock nbclient rejects (KeyError 'state') and
print "Widget Javascript not detected" when no front end answers. A display
that fails never fails the job.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any, Optional

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_REDRAW_EVERY = 0.5  # seconds between text redraws in a notebook: each is a message to the front end


def _kernel_shell() -> Optional[Any]:
    """The IPython shell of a Jupyter kernel we run in, or None (terminal, plain python, IPython console)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if shell is not None and hasattr(shell, "kernel") else None


def _ipywidgets_major() -> int:
    try:
        import ipywidgets
    except ImportError:
        return 0
    try:
        return int(ipywidgets.__version__.split(".")[0])
    except (AttributeError, ValueError):
        return 0


def _widgets_usable(shell: Any) -> bool:
    # Only ipykernel's own shell speaks the comm protocol widgets need.
    is_ipykernel = type(shell).__module__.startswith("ipykernel.")
    return is_ipykernel and _ipywidgets_major() >= 7


def _terminal_tqdm(total: int, done: int, description: str) -> Optional[Any]:
    try:
        from tqdm import tqdm  # the terminal bar; a notebook gets _NotebookBar
    except ImportError:
        return None
    try:
        return tqdm(total=total, initial=done, desc=description, unit="rank")
    except Exception:
        return None


class _ProgressWidget:
    """An ipywidgets bar with a count beside it (ipywidgets 7 and later)."""

    def __init__(self, total: int, done: int, description: str) -> None:
        import ipywidgets

        self._bar = ipywidgets.IntProgress(min=0, max=max(total, 1), value=done, description=description)
        self._label = ipywidgets.HTML()
        self.box = ipywidgets.HBox([self._bar, self._label])

    def show(self, line: str, count: int) -> None:
        self._bar.value = count
        self._label.value = html.escape(line)

    def finish(self, complete: bool) -> None:
        self._bar.bar_style = "success" if complete else "warning"

    def view(self) -> dict:
        return {"version_major": 2, "version_minor": 0, "model_id": self.box.model_id}


class _NotebookBar:
    """One display in the cell's output, redrawn in place: plain text always, a widget view when usable."""

    def __init__(self, total: int, done: int, description: str, widgets: bool) -> None:
        from IPython.display import display

        self._total = total
        self._count = done
        self._description = description
        self._note = ""
        self._widget = _widget_or_none(total, done, description) if widgets else None
        self._drawn_at = time.monotonic()
        self._handle = display(self._bundle(), raw=True, display_id=True)

    def _line(self) -> str:
        line = f"{self._description}: {self._count}/{self._total} ranks done"
        return f"{line}; {self._note}" if self._note else line

    def _bundle(self) -> dict:
        bundle: dict = {"text/plain": self._line()}
        if self._widget is not None:
            self._widget.show(self._line(), self._count)
            bundle[WIDGET_VIEW] = self._widget.view()
        return bundle

    def _redraw(self, now: bool = False) -> None:
        if self._handle is None or (not now and time.monotonic() - self._drawn_at < _REDRAW_EVERY):
            return  # no display to redraw (display() gives none outside a kernel), or drawn just now
        self._drawn_at = time.monotonic()
        self._handle.update(self._bundle(), raw=True)

    def update(self, count: int) -> None:
        self._count = count
        if self._widget is not None:  # the widget moves by itself; redrawing would re-render it
            self._widget.show(self._line(), count)
        else:
            self._redraw()

    def note(self, text: str) -> None:
        self._note = text.removeprefix("pesc: ")
        self._redraw(now=True)

    def close(self) -> None:
        if self._widget is not None:
            self._widget.finish(self._count >= self._total)
        self._note = ""
        self._redraw(now=True)


def _widget_or_none(total: int, done: int, description: str) -> Optional[_ProgressWidget]:
    try:
        return _ProgressWidget(total, done, description)
    except Exception:  # ipywidgets missing or broken: the text line alone still shows progress
        return None


def _notebook_bar(total: int, done: int, description: str) -> Optional[_NotebookBar]:
    shell = _kernel_shell()
    if shell is None:
        return None
    try:
        return _NotebookBar(total, done, description, widgets=_widgets_usable(shell))
    except Exception:
        return None


class Bar:
    """Counts finished ranks. Does nothing when disabled or when there is nowhere sensible to draw."""

    def __init__(self, total: int, enabled: bool, done: int = 0, description: str = "pesc") -> None:
        self._total = total
        self._count = done
        self._tqdm: Any = None
        self._notebook: Optional[_NotebookBar] = None
        self._text = False
        if not enabled:
            return
        self._notebook = _notebook_bar(total, done, description)
        if self._notebook is None:
            self._tqdm = _terminal_tqdm(total, done, description)
            self._text = self._tqdm is None and _on_terminal()

    def update(self) -> None:
        self._count += 1
        if self._notebook is not None:
            self._notebook.update(self._count)
        elif self._tqdm is not None:
            self._tqdm.update(1)
        elif self._text:
            sys.stderr.write(f"\rpesc: {self._count}/{self._total} ranks done")
            sys.stderr.flush()

    def note(self, text: str) -> None:
        """Says something beside the bar, without breaking it."""
        if self._notebook is not None:
            self._notebook.note(text)
        elif self._tqdm is not None:
            self._tqdm.write(text, file=sys.stderr)
        else:
            sys.stderr.write(("\n" if self._text else "") + text + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._notebook is not None:
            self._notebook.close()
        elif self._tqdm is not None:
            self._tqdm.close()
        elif self._text:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self._tqdm = None
        self._notebook = None
        self._text = False


def _on_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()
