"""The built-in local diffusers backend (GitHub issue #4).

``plugin`` registers ``backend.DiffusersBackend``; ``backend`` stays free of heavy imports, and
torch, diffusers and transformers (the ``[diffusers]`` extra) load with ``run`` when a
generation starts. ``run`` drives one generation; ``x0`` estimates the final image at each step;
``latent_preview`` turns that estimate into a small preview; ``loading`` finds, loads and caches
pipelines; ``schedulers`` maps sampler names; ``tiny`` builds tiny random-weight pipelines;
``cpu_threads`` chooses torch's threads for CPU runs.
"""
