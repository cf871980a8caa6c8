"""The built-in Hugging Face Inference backend (GitHub issue #7, part B).

``plugin`` registers ``backend.HfInferenceBackend``, configured by ``settings`` (code, the
environment or a file); ``catalogue`` is the curated list of models with their defaults;
``listing`` offers the catalogue or the Hub's live list; ``run`` drives one request, whose
``text_to_image`` call runs on its own thread (``call``); ``failures`` turns what went wrong
into a retry or a failure reason; ``tokens`` finds the token and keeps it out of every message.
huggingface_hub (the ``[inference]`` extra) is imported only when a run or a listing starts.
"""
