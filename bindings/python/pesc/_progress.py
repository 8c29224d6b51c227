"""Progress display while waiting: tqdm when importable, else one plain-text line on a terminal."""

from __future__ import annotations

import sys
from typing import Any


class Bar:
    """Counts finished ranks. Does nothing when disabled or when there is nowhere sensible to draw."""

    def __init__(self, total: int, enabled: bool, done: int = 0, description: str = "pesc") -> None:
        self._total = total
        self._count = done
        self._tqdm: Any = None
        self._text = False
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._text = sys.stderr is not None and sys.stderr.isatty()
        else:
            self._tqdm = tqdm(total=total, initial=done, desc=description, unit="rank")

    def update(self) -> None:
        self._count += 1
        if self._tqdm is not None:
            self._tqdm.update(1)
        elif self._text:
            sys.stderr.write(f"\rpesc: {self._count}/{self._total} ranks done")
            sys.stderr.flush()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._text:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self._tqdm = None
        self._text = False
