"""The built-in ComfyUI backend (GitHub issue #8): a ComfyUI server's generation, step by step.

``plugin`` registers one ``backend.ComfyUIBackend`` per configured endpoint. ``settings`` reads
the endpoint's options; ``workflow`` builds the graph (the built-in text-to-image one, or a
user's with marked inputs); ``client`` is the HTTP API (httpx), ``connection`` the websocket
(websockets), ``messages`` parses what the socket sends, ``steps`` turns progress and preview
frames into steps, and ``run`` drives one generation. httpx and websockets (the ``[comfyui]``
extra) load only when a backend first talks to its server.
"""
