"""The built-in ray backend (GitHub issue #13): any registered backend, hosted on a pool of Ray
Serve replicas, streamed into the widget as if it ran here.

``plugin`` registers one ``backend.RayBackend`` per configured application; ``connection``
holds this process's link to Ray (the handle, the finish-early actor); ``watch`` passes Stop,
"finish early" and the deadline on while a run streams; ``failures`` turns Serve's errors into
``Failed`` events. The replica side is ``gradio_diffusion_preview.serving``. See docs/scaling.md.
"""
