"""The AUTOMATIC1111 / Forge / SD.Next backend (GitHub issue #8): txt2img on a server started
with ``--api``, its live preview of every step relayed, cancel, and the final images.

``plugin`` registers one ``backend.A1111Backend`` per configured endpoint of kind ``a1111``
(or one that says how to configure it); ``backend`` holds the identity, the models and the
server's lists; ``run`` follows one generation; ``client`` makes the HTTP calls (httpx, the
``[a1111]`` extra, imported on the first call); ``protocol`` turns JSON into values and back;
``reaper`` stops abandoned jobs once they run, and never another client's; ``settings`` reads
the endpoint's options.
"""
