"""The built-in remote Gradio backend (GitHub issue #8): a Gradio app or Space as a backend.

``plugin`` registers one ``backend.RemoteGradioBackend`` per configured endpoint of kind
"gradio". ``settings`` checks the endpoint's options; ``connection`` makes the gradio_client
``Client`` (no stray token, no telemetry, no file downloads) on first use; ``api`` works out
which endpoint, parameters and output to use; ``run`` follows one job; ``values`` turns what
the app returns into images; ``failures`` says what went wrong. See
docs/backends/remote-gradio.md.
"""
