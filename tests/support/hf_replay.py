"""A replay of Inference Providers' recorded traffic, at huggingface_hub's own HTTP transport.

``replay(monkeypatch)`` installs client factories (huggingface_hub's public
``set_client_factory`` and ``set_async_client_factory``) whose clients keep the library's own
event hooks but send every request to an ``httpx2.MockTransport``. So the real provider code
of huggingface_hub 2.4 runs unchanged, with no ``router_url``: "auto" asks the Hub for the
model's provider mapping, the provider helper builds its request, reads its answer, fetches the
image by URL or polls, exactly as it does against the real services.

The answers are those recorded against the real services by huggingface_hub's own test
cassettes (``recorded/text_to_image.json``: fal-ai, hf-inference, replicate, together; its
``source`` names the commit; images shrunk to 16x16), and, for the providers those cassettes
predate (nscale, wavespeed, zai-org), answers of the shapes their helpers in huggingface_hub
2.4 read (``inference/_providers/<provider>.py``). A test scripts failures by replacing a
route's answer (``replay.answer(...)``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).parents[1] / "backends" / "hf_inference" / "recorded"
TOKEN = "hf_replayReplayReplayReplayReplay00"
ROUTER = "https://router.huggingface.co"
HUB = "https://huggingface.co"
SCHNELL = "black-forest-labs/FLUX.1-schnell"
SDXL = "stabilityai/stable-diffusion-xl-base-1.0"
DELIVERY = "https://delivery.example.invalid/signed/out-0.png?X-Amz-Signature=abc123"
"""The image URL our own built answers name (signed, like a real delivery URL)."""

Answer = Callable[[Any], Any]
"""A route's answer: request -> httpx2.Response."""


def _recorded() -> dict[str, list[dict]]:
    return json.loads((RECORDED / "text_to_image.json").read_text())["interactions"]


def recorded_png() -> bytes:
    """The recorded fal-ai image (shrunk): what every image URL answers unless scripted."""
    for item in _recorded()["fal-ai"]:
        if "png_base64" in item:
            return base64.b64decode(item["png_base64"])
    raise AssertionError("the recording has no image")


@dataclass
class Replay:
    """Recorded answers by route; ``requests`` are (method, url, authorized) as sent, and
    ``timeouts`` each request's timeouts (httpx's ``timeout`` extension) in the same order."""

    mappings: dict[str, list[dict]] = field(default_factory=dict)
    routes: dict[tuple[str, str], Answer] = field(default_factory=dict)
    requests: list[tuple[str, str, bool]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    """Each request's body, in the same order as ``requests``."""
    timeouts: list[dict[str, float | None]] = field(default_factory=list)
    hub_calls: int = 0

    def serve(
        self, model: str, *providers: tuple[str, str, str], task: str = "text-to-image"
    ) -> None:
        """The Hub's provider mapping for ``model``: (provider, provider_id, status), in the
        order the Hub lists them, each serving ``task``."""
        self.mappings[model] = [
            {"provider": p, "providerId": pid, "status": status, "task": task}
            for p, pid, status in providers
        ]

    def answer(self, method: str, url: str, answer: Answer) -> None:
        """Replace (or add) the answer of ``method url`` (no query string)."""
        self.routes[(method, url)] = answer

    def handle(self, request: Any) -> Any:
        import httpx2

        url = str(request.url).split("?", 1)[0]
        authorized = request.headers.get("authorization") == f"Bearer {TOKEN}"
        self.requests.append((request.method, url, authorized))
        self.bodies.append(request.read())
        self.timeouts.append(dict(request.extensions.get("timeout") or {}))
        if url.startswith(f"{HUB}/api/models/"):
            self.hub_calls += 1
            model = url.removeprefix(f"{HUB}/api/models/")
            if model not in self.mappings:
                return httpx2.Response(404, json={"error": "Repository not found"})
            mapping = {
                m["provider"]: {k: v for k, v in m.items() if k != "provider"}
                for m in self.mappings[model]
            }
            return httpx2.Response(
                200,
                json={
                    "id": model,
                    "pipeline_tag": next(
                        (m["task"] for m in self.mappings[model]), "text-to-image"
                    ),
                    "inferenceProviderMapping": mapping,
                },
            )
        answer = self.routes.get((request.method, url))
        if answer is None:
            return httpx2.Response(404, json={"error": f"no recorded answer for {url}"})
        if url.startswith(ROUTER) and not authorized:
            return httpx2.Response(401, json={"error": "Invalid credentials in Authorization"})
        return answer(request)

    def provider_calls(self) -> list[str]:
        """The providers whose router route was called, in order."""
        return [
            url.removeprefix(f"{ROUTER}/").split("/", 1)[0]
            for method, url, _ in self.requests
            if method == "POST" and url.startswith(ROUTER)
        ]


def png(request: Any = None) -> Any:
    import httpx2

    return httpx2.Response(200, content=recorded_png(), headers={"content-type": "image/png"})


def json_answer(data: Any, status: int = 200) -> Answer:
    import httpx2

    return lambda request: httpx2.Response(status, json=data)


def default_replay() -> Replay:
    """Every supported provider serving FLUX.1 [schnell] and SDXL with its recorded answer."""
    recorded = _recorded()
    replay = Replay()
    fal_post, fal_image = recorded["fal-ai"][1], recorded["fal-ai"][2]
    rep_post, rep_image = recorded["replicate"][1], recorded["replicate"][2]
    together_post = recorded["together"][1]
    hf_image = base64.b64decode(recorded["hf-inference"][0]["png_base64"])
    image_b64 = together_post["json"]["data"][0]["b64_json"]
    routes = {
        "fal-ai": "fal-ai/flux/schnell",
        "replicate": "black-forest-labs/flux-schnell",
        "together": "black-forest-labs/FLUX.1-schnell-Free",
        "nscale": "black-forest-labs/FLUX.1-schnell",
        "wavespeed": "wavespeed-ai/flux-schnell",
        "zai-org": "cogview-4",
        "hf-inference": SCHNELL,
    }
    for model in (SCHNELL, SDXL):
        replay.serve(model, *[(p, pid, "live") for p, pid in routes.items()])
    import httpx2

    replay.answer("POST", f"{ROUTER}/fal-ai/fal-ai/flux/schnell", json_answer(fal_post["json"]))
    replay.answer("GET", fal_image["url"], png)
    replay.answer(
        "POST",
        f"{ROUTER}/replicate/v1/models/black-forest-labs/flux-schnell/predictions",
        json_answer(rep_post["json"], rep_post["status"]),
    )
    replay.answer("GET", rep_image["url"], png)
    replay.answer(
        "POST", f"{ROUTER}/together/v1/images/generations", json_answer(together_post["json"])
    )
    replay.answer(
        "POST",
        f"{ROUTER}/nscale/v1/images/generations",
        json_answer({"created": 1, "data": [{"b64_json": image_b64}]}),
    )
    replay.answer(
        "POST",
        f"{ROUTER}/wavespeed/api/v3/wavespeed-ai/flux-schnell",
        json_answer(
            {
                "code": 200,
                "data": {
                    "id": "w1",
                    "status": "created",
                    "urls": {"get": "https://api.wavespeed.ai/api/v3/predictions/w1/result"},
                },
            }
        ),
    )
    replay.answer(
        "GET",
        f"{ROUTER}/wavespeed/api/v3/predictions/w1/result",
        json_answer({"code": 200, "data": {"status": "completed", "outputs": [DELIVERY]}}),
    )
    replay.answer(
        "POST",
        f"{ROUTER}/zai-org/api/paas/v4/async/images/generations",
        json_answer({"id": "z1", "task_status": "PROCESSING"}),
    )
    replay.answer(
        "GET",
        f"{ROUTER}/zai-org/api/paas/v4/async-result/z1",
        json_answer({"id": "z1", "task_status": "SUCCESS", "image_result": [{"url": DELIVERY}]}),
    )
    replay.answer("GET", DELIVERY.split("?")[0], png)
    replay.answer(
        "POST",
        f"{ROUTER}/hf-inference/models/{SCHNELL}",
        lambda request: httpx2.Response(
            200, content=hf_image, headers={"content-type": "image/png"}
        ),
    )
    return replay


KONTEXT = "black-forest-labs/FLUX.1-Kontext-dev"
EDITS = RECORDED / "image_to_image.json"


def edited_png(request: Any) -> Any:
    """hf-inference's image-to-image answer: the image's bytes. Its diffusers server returns a
    picture of ``parameters.target_size`` (else the input's size) made from the input; here
    the input itself, inverted (an "edit" a test can tell from the input)."""
    import io

    import httpx2
    import PIL.Image
    import PIL.ImageOps

    body = json.loads(request.read())
    image = PIL.Image.open(io.BytesIO(base64.b64decode(body["inputs"]))).convert("RGB")
    size = body.get("parameters", {}).get("target_size")
    if size:
        image = image.resize((size["width"], size["height"]))
    out = io.BytesIO()
    PIL.ImageOps.invert(image).save(out, format="PNG")
    return httpx2.Response(200, content=out.getvalue(), headers={"content-type": "image/png"})


def edit_replay(served: Replay | None = None) -> Replay:
    """``served`` (the text-to-image replay by default) with FLUX.1 Kontext [dev] served for
    image-to-image by the five providers huggingface_hub 2.4 calls for it, each answering as
    ``recorded/image_to_image.json`` records (fal-ai polls once IN_PROGRESS, then COMPLETED)."""
    served = served or default_replay()
    recorded = json.loads(EDITS.read_text())
    model = recorded["model"]
    providers = [tuple(entry) for entry in recorded["mapping"]["providers"]]
    served.serve(model, *providers, task="image-to-image")
    image_b64 = base64.b64encode(recorded_png()).decode()
    for provider, item in recorded["interactions"].items():
        by_route: dict[tuple[str, str], list[dict]] = {}
        for answer in item["answers"]:
            url = answer["url"].replace("<model>", model)
            by_route.setdefault((answer["method"], url), []).append(answer)
        for (method, url), answers in by_route.items():
            served.answer(method, url, _in_turn(answers, image_b64, provider))
    return served


def _in_turn(answers: list[dict], image_b64: str, provider: str) -> Answer:
    """A route's recorded answers, one per request, the last repeated."""
    import httpx2

    given = iter(range(len(answers)))

    def answer(request: Any) -> Any:
        recorded = answers[min(next(given, len(answers) - 1), len(answers) - 1)]
        if recorded.get("image"):
            return edited_png(request) if provider == "hf-inference" else png(request)
        body = json.loads(json.dumps(recorded["json"]).replace("<the recorded PNG>", image_b64))
        return httpx2.Response(recorded["status"], json=body)

    return answer


def replay(monkeypatch, served: Replay | None = None) -> Iterator[Replay]:
    """For a fixture: huggingface_hub's HTTP answered by ``served`` (the recorded answers by
    default), online mode for the test only, HF_TOKEN the replay's token, the provider mapping
    cache empty before and after."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.inference._providers._common import _fetch_inference_provider_mapping
    from huggingface_hub.utils import _http

    served = served or default_replay()
    transport = httpx2.MockTransport(served.handle)

    def sync_client() -> Any:
        return httpx2.Client(
            transport=transport,
            event_hooks={"request": [_http.hf_request_event_hook]},
            follow_redirects=True,
            timeout=None,
        )

    def async_client() -> Any:
        return httpx2.AsyncClient(
            transport=transport,
            event_hooks={
                "request": [_http.async_hf_request_event_hook],
                "response": [_http.async_hf_response_event_hook],
            },
            follow_redirects=True,
            timeout=None,
        )

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    _fetch_inference_provider_mapping.cache_clear()
    _http.set_client_factory(sync_client)
    _http.set_async_client_factory(async_client)
    try:
        yield served
    finally:
        _http.set_client_factory(_http.default_client_factory)
        _http.set_async_client_factory(_http.default_async_client_factory)
        _fetch_inference_provider_mapping.cache_clear()


PRIVATE = re.compile(
    r"router\.huggingface\.co|fal\.media|replicate\.delivery|example\.invalid|wavespeed\.ai|"
    r"api/v3|async-result|X-Amz|cloudfront\.net|queue\.fal\.run|/requests/"
)


def no_address(text: str) -> bool:
    """True when ``text`` names no request address (a provider's route, a signed delivery URL)
    and not the token."""
    return not PRIVATE.search(text) and TOKEN not in text
