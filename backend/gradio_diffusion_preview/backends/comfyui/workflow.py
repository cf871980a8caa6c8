"""The graphs this backend submits: the built-in text-to-image workflow, or a user's own.

Graphs are ComfyUI's API format: ``{node_id: {"class_type": ..., "inputs": {...}}}``, where an
input is a value or a link ``[other_node_id, output_index]``.

The built-in workflow is the classic one (CheckpointLoaderSimple, two CLIPTextEncode,
EmptyLatentImage, KSampler, VAEDecode, SaveImage). For image-to-image, LoadImage (the input,
uploaded first) and VAEEncode replace EmptyLatentImage, and the KSampler's ``denoise`` is the
request's strength. For inpainting the mask is uploaded too, read by ``LoadImageMask`` (its red
channel: white is 1, the part to remake) and set on the encoded latent with
``SetLatentNoiseMask``, so the sampler remakes only the white part, at the request's strength, on
any checkpoint (``VAEEncodeForInpaint`` would grey the masked pixels first, which suits
inpainting checkpoints at denoise 1 but not a strength). Node inputs as in ComfyUI's nodes.py
(comfyanonymous/ComfyUI@01094316268cab9ed5cd53b825b359a7becb9d6c: ``LoadImageMask(image,
channel)`` -> MASK, ``SetLatentNoiseMask(samples, mask)`` -> LATENT). A batch of N images is N
sampler branches seeded ``seed, seed+1, ...`` that share the model, the prompts and the empty
latent, so every image can be made again alone from its own seed (one KSampler over a batch would
tie all images to one seed).

A user's workflow is a file exported with ComfyUI's "Export (API)", plus marks that say which
node input is the prompt, the steps, the size and so on, each written ``"node_id.input_name"``.
The values the file holds at the marked inputs are the defaults. A workflow that marks
``image`` (a ``LoadImage`` node's ``image``) takes an input image: it is uploaded and its name
replaces the file's; with ``denoise`` marked too the request's strength goes there
(image-to-image), without it the workflow edits by the prompt (instruction editing, e.g. a
Kontext workflow); ``mask`` (a ``LoadImageMask`` node's ``image``) takes a mask (inpainting).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...request import GenerationRequest

SEED_MODULUS = 2**32
ROLES = {
    "prompt": "the positive prompt text (a CLIPTextEncode's text)",
    "negative": "the negative prompt text",
    "seed": "the sampler's seed",
    "steps": "the sampler's steps (its progress is reported as the run's steps)",
    "cfg": "the guidance scale",
    "width": "the image width (an EmptyLatentImage's width)",
    "height": "the image height",
    "checkpoint": "the model file (a CheckpointLoaderSimple's ckpt_name)",
    "sampler": "the sampler name",
    "scheduler": "the scheduler name",
    "image": "the input image's file name (a LoadImage's image): the upload's name goes there",
    "mask": "the mask's file name (a LoadImageMask's image), for inpainting",
    "denoise": "the sampler's denoise: the request's strength",
}
"""The inputs a user's workflow can mark, and what each is."""
REQUIRED_ROLES = ("prompt", "steps", "width", "height")
MODEL_INPUTS = frozenset({"ckpt_name", "unet_name", "clip_name", "vae_name", "lora_name"})
"""Input names that hold a model file: a value ComfyUI does not have is a missing model."""


class WorkflowError(ValueError):
    """A user's workflow or its marks are wrong; ``str()`` names the problem and the fix."""


@dataclass(frozen=True)
class InputRef:
    """One node input, written ``node_id.input_name``."""

    node: str
    name: str

    @classmethod
    def parse(cls, role: str, text: Any) -> InputRef:
        node, _, name = text.strip().rpartition(".") if isinstance(text, str) else ("", "", "")
        if not node or not name:
            raise WorkflowError(
                f"The mark for '{role}' is {text!r}. Fix: write it as \"node_id.input_name\", "
                'e.g. "6.text" (the node id as in the exported file).'
            )
        return cls(node, name)

    def __str__(self) -> str:
        return f"{self.node}.{self.name}"


@dataclass(frozen=True)
class Plan:
    """A graph ready to submit, and what a run needs to know about it."""

    graph: dict[str, Any]
    sampler_nodes: list[str]
    """The samplers whose progress is the run's steps, one per image, in order."""
    output_nodes: list[str] | None
    """The nodes whose images are the final images, in order; None: whichever save images."""
    loader_nodes: frozenset[str] = frozenset()
    """Nodes that load models: while they run, the run is loading."""
    model_inputs: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    """(node, input) pairs that name a model file."""
    seeds: tuple[int, ...] = ()
    """The seed of each image (none when a user's workflow has no marked seed)."""


def builtin_plan(
    request: GenerationRequest,
    sampler: str,
    scheduler: str,
    filename_prefix: str,
    input_image: str | None = None,
    mask_image: str | None = None,
) -> Plan:
    """The built-in graph for a validated request: text-to-image, or with ``input_image`` (the
    name ``/upload/image`` gave the request's input) image-to-image from that picture, and with
    ``mask_image`` (the uploaded mask's name) inpainting its white part."""
    graph: dict[str, Any] = {
        "1": _node("CheckpointLoaderSimple", ckpt_name=request.model),
        "2": _node("CLIPTextEncode", text=request.prompt, clip=["1", 1]),
        "3": _node("CLIPTextEncode", text=request.negative_prompt, clip=["1", 1]),
        "4": _node("EmptyLatentImage", width=request.width, height=request.height, batch_size=1),
    }
    denoise = 1.0
    if input_image is not None:
        graph["0"] = _node("LoadImage", image=input_image)
        graph["4"] = _node("VAEEncode", pixels=["0", 0], vae=["1", 2])
        if mask_image is not None:
            graph["40"] = graph.pop("4")
            graph["41"] = _node("LoadImageMask", image=mask_image, channel="red")
            graph["4"] = _node("SetLatentNoiseMask", samples=["40", 0], mask=["41", 0])
        denoise = request.strength if request.strength is not None else 1.0
    samplers, saves = [], []
    first = int(request.seed or 0)
    seeds = tuple((first + index) % SEED_MODULUS for index in range(request.num_images))
    for index, seed in enumerate(seeds):
        sample, decode, save = (str(5 + 3 * index + offset) for offset in range(3))
        graph[sample] = _node(
            "KSampler",
            model=["1", 0],
            seed=seed,
            steps=request.steps,
            cfg=request.guidance,
            sampler_name=sampler,
            scheduler=scheduler,
            positive=["2", 0],
            negative=["3", 0],
            latent_image=["4", 0],
            denoise=denoise,
        )
        graph[decode] = _node("VAEDecode", samples=[sample, 0], vae=["1", 2])
        graph[save] = _node("SaveImage", images=[decode, 0], filename_prefix=filename_prefix)
        samplers.append(sample)
        saves.append(save)
    return Plan(graph, samplers, saves, frozenset({"1"}), frozenset({("1", "ckpt_name")}), seeds)


def _node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


@dataclass(frozen=True)
class UserWorkflow:
    """A user's API-format workflow with its marked inputs."""

    name: str
    graph: dict[str, Any]
    marks: dict[str, InputRef]

    @classmethod
    def load(cls, path: str | Path, marks: Mapping[str, Any] | None) -> UserWorkflow:
        """Read and check a workflow file and its marks; raises ``WorkflowError``."""
        file = Path(path).expanduser()
        try:
            graph = json.loads(file.read_text(encoding="utf-8"))
        except OSError as error:
            raise WorkflowError(
                f"The ComfyUI workflow '{path}' cannot be read ({type(error).__name__}). Fix: "
                "point the endpoint's 'workflow' option at a file saved with ComfyUI's "
                "'Export (API)'."
            ) from None
        except ValueError as error:
            raise WorkflowError(
                f"The ComfyUI workflow '{path}' is not JSON ({error}). Fix: save it with "
                "ComfyUI's 'Export (API)'."
            ) from None
        return cls.from_graph(file.stem, graph, marks)

    @classmethod
    def from_graph(cls, name: str, graph: Any, marks: Mapping[str, Any] | None) -> UserWorkflow:
        _check_api_format(name, graph)
        if not isinstance(marks, Mapping):
            raise WorkflowError(
                f"The ComfyUI workflow '{name}' has no 'inputs' marks. Fix: add an 'inputs' "
                'table to the endpoint\'s options, e.g. {"prompt": "6.text", "steps": '
                '"3.steps", "width": "5.width", "height": "5.height"}.'
            )
        unknown = sorted(set(marks) - set(ROLES))
        if unknown:
            raise WorkflowError(
                f"The workflow '{name}' marks an unknown input '{unknown[0]}'. Fix: use only "
                f"{', '.join(ROLES)}."
            )
        missing = [role for role in REQUIRED_ROLES if role not in marks]
        if missing:
            raise WorkflowError(
                f"The workflow '{name}' does not mark '{missing[0]}'. Fix: mark at least "
                f'{", ".join(REQUIRED_ROLES)} (as "node_id.input_name").'
            )
        refs = {role: InputRef.parse(role, text) for role, text in marks.items()}
        for role, ref in refs.items():
            _check_mark(name, graph, role, ref)
        return cls(name, graph, refs)

    def default(self, role: str) -> Any:
        """The value the file holds at a marked input (None when unmarked)."""
        ref = self.marks.get(role)
        return None if ref is None else self.graph[ref.node]["inputs"][ref.name]

    def plan(
        self,
        request: GenerationRequest,
        sampler: str | None,
        scheduler: str | None,
        input_image: str | None = None,
        mask_image: str | None = None,
    ) -> Plan:
        """The workflow with a validated request's values at the marked inputs (the uploaded
        input's and mask's names at ``image`` and ``mask``)."""
        graph = copy.deepcopy(self.graph)
        values = {
            "prompt": request.prompt,
            "negative": request.negative_prompt,
            "seed": request.seed,
            "steps": request.steps,
            "cfg": request.guidance,
            "width": request.width,
            "height": request.height,
            "checkpoint": request.model,
            "sampler": sampler,
            "scheduler": scheduler,
            "image": input_image,
            "mask": mask_image,
            "denoise": request.strength,
        }
        for role, ref in self.marks.items():
            if values[role] is not None:
                graph[ref.node]["inputs"][ref.name] = values[role]
        loaders = frozenset(
            node_id for node_id, node in graph.items() if "Loader" in node["class_type"]
        )
        model_inputs = {
            (node_id, name)
            for node_id, node in graph.items()
            for name in node["inputs"]
            if name in MODEL_INPUTS
        }
        if "checkpoint" in self.marks:
            model_inputs.add((self.marks["checkpoint"].node, self.marks["checkpoint"].name))
        seeds = (int(request.seed),) if "seed" in self.marks and request.seed is not None else ()
        return Plan(
            graph, [self.marks["steps"].node], None, loaders, frozenset(model_inputs), seeds
        )


def _check_api_format(name: str, graph: Any) -> None:
    fix = (
        "Fix: in ComfyUI, use 'Export (API)' (not 'Save'): the API format maps node ids to "
        '{"class_type": ..., "inputs": {...}}.'
    )
    if not isinstance(graph, dict) or not graph:
        raise WorkflowError(f"The workflow '{name}' is not a graph of nodes. {fix}")
    if "nodes" in graph and "links" in graph:
        raise WorkflowError(f"The workflow '{name}' is in ComfyUI's UI format. {fix}")
    for node_id, node in graph.items():
        if (
            not isinstance(node, dict)
            or not isinstance(node.get("class_type"), str)
            or not isinstance(node.get("inputs"), dict)
        ):
            raise WorkflowError(
                f"Node '{node_id}' of the workflow '{name}' has no class_type and inputs. {fix}"
            )


def _check_mark(name: str, graph: dict[str, Any], role: str, ref: InputRef) -> None:
    node = graph.get(ref.node)
    if node is None:
        raise WorkflowError(
            f"The mark {role} = \"{ref}\" names node '{ref.node}', which the workflow '{name}' "
            f"does not have. Fix: use one of its node ids: {', '.join(sorted(graph))}."
        )
    inputs = node["inputs"]
    if ref.name not in inputs:
        raise WorkflowError(
            f"The mark {role} = \"{ref}\" names input '{ref.name}', which node '{ref.node}' "
            f"({node['class_type']}) does not have. Fix: use one of: {', '.join(inputs)}."
        )
    value = inputs[ref.name]
    if isinstance(value, list):
        raise WorkflowError(
            f"The mark {role} = \"{ref}\" names an input linked to node '{value[0]}', not a "
            "value. Fix: mark the input of the node that holds the value."
        )
    numeric = {
        "seed": int,
        "steps": int,
        "width": int,
        "height": int,
        "cfg": float,
        "denoise": float,
    }
    wanted = numeric.get(role, str)
    kinds = (int, float) if wanted is float else wanted
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise WorkflowError(
            f'The mark {role} = "{ref}" holds {value!r}, not a {wanted.__name__}. Fix: mark '
            f"the input that holds {ROLES[role]}."
        )
