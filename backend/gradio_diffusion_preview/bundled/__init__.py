"""Models shipped inside the wheel, so that the demo and the tests have real pictures offline.

Each model lives in its own subpackage with the code that defines what it was trained on (numpy
and Pillow only) and its diffusers folder; torch and diffusers are only needed to run it.
"""
