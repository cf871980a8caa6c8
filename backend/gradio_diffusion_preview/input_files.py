"""Edit runs' input pictures as served files, written once per run, not once per streamed state.

A run's states all hold the same input picture object (``RunState.input_image``; the engine
copies states shallowly), and the component turns every state into its wire form. Encoding a
PNG on each of them would cost milliseconds per frame; ``InputFiles`` remembers the file it
wrote for the last few pictures, by identity, and writes again only when that file is gone
(image retention removed it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import PIL.Image
from gradio.data_classes import FileData

REMEMBERED = 16
"""How many recent runs' input files are remembered (runs going at once, in practice)."""


class InputFiles:
    """The served file of an edit's input picture; ``save`` writes one (the component's own
    ``_save``: Gradio's cache, named ``input``, kept as long as its final images)."""

    def __init__(self, save: Callable[..., FileData]) -> None:
        self._save = save
        self._lock = threading.Lock()
        self._files: OrderedDict[int, tuple[PIL.Image.Image, FileData]] = OrderedDict()

    def file_for(self, image: PIL.Image.Image) -> FileData:
        """The file showing ``image``: the one written for it before, if it is still there."""
        key = id(image)
        with self._lock:
            known = self._files.get(key)
            if known is not None and known[0] is image and Path(known[1].path).is_file():
                self._files.move_to_end(key)
                return known[1]
        file = self._save(image, name="input")
        with self._lock:
            self._files[key] = (image, file)  # holds the picture: its id is not reused
            self._files.move_to_end(key)
            while len(self._files) > REMEMBERED:
                self._files.popitem(last=False)
        return file
