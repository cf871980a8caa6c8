"""The files that pictures repeated in a run's states were saved to, so each is encoded once.

A batch's images may arrive one by one (``ImageReady``) while the run goes on, and an edit's
input picture is in every state of its run (``RunState.input_image``): every state streamed
after carries them again, as the same objects. Encoding a large picture as PNG takes a tenth of
a second or more; doing it again for each later state would slow the stream by that much per
state. ``SavedOnce`` remembers, for the last few pictures (by identity), the file each was
saved to with which text, and hands that file back while it is still on disk (image retention
may have removed it: then it is written again).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradio.data_classes import FileData

REMEMBERED = 64
"""How many pictures are remembered: more than the batches and inputs of the runs going at
once (the remembered pictures are held, so the number is bounded)."""


class SavedOnce:
    """``saved(image, text, save)``: the file ``image`` was saved to with ``text``, or
    ``save()``'s file the first time. Safe to call from the threads of concurrent runs."""

    def __init__(self, remembered: int = REMEMBERED) -> None:
        self._files: OrderedDict[int, tuple[Any, dict | None, FileData]] = OrderedDict()
        self._remembered = remembered
        self._lock = threading.Lock()

    def saved(self, image: Any, text: dict | None, save: Callable[[], FileData]) -> FileData:
        key = id(image)  # the entry holds the image, so its id is not reused meanwhile
        with self._lock:
            known = self._files.get(key)
            if known is not None and known[0] is image and known[1] == text:
                self._files.move_to_end(key)
                if Path(known[2].path).is_file():  # not yet removed by the retention
                    return known[2]
        file = save()
        with self._lock:
            self._files[key] = (image, text, file)
            self._files.move_to_end(key)
            while len(self._files) > self._remembered:
                self._files.popitem(last=False)
        return file
