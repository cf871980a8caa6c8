"""``python -m gradio_diffusion_preview``: see ``cli``."""

import sys

from .cli import main

sys.exit(main())
