"""The policy for public apps, in-process: catalogue, limits, options, time limit, fair queue,
ownership, path scrubbing, and image retention (their servers' side is in test_public_server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from toy_backends import CountingBackend, registry_with

from gradio_diffusion_preview import Backend, Capabilities, Failed, Started, cancel_run, stream
from gradio_diffusion_preview.fair_queue import Busy, FairQueue
from gradio_diffusion_preview.image_retention import ImageRetention
from gradio_diffusion_preview.policy import CatalogueEntry, Limits, Policy


def make_policy(**overrides) -> Policy:
    entries = [
        CatalogueEntry(
            id="flat", label="Flat colour", backend="counting", model="flat", options={}
        ),
    ]
    return Policy(**{"catalogue": entries, **overrides})


@pytest.fixture
def registry():
    return registry_with(CountingBackend(), PathLeakingBackend(), HangingBackend())


def last(states):
    return list(states)[-1]


def test_a_visitor_runs_a_catalogue_entry_and_sees_its_id_not_its_model(registry):
    final = last(
        stream(
            "counting",
            prompt="a",
            model="nice",
            steps=3,
            registry=registry,
            policy=make_policy(
                catalogue=[CatalogueEntry(id="nice", backend="counting", model="flat")]
            ),
        )
    )
    assert final.status == "done", final.message
    assert final.model == "nice"


@pytest.mark.parametrize("choice", ["/etc", "/definitely/not/here", "../flat", "flat2", 7])
def test_any_model_outside_the_catalogue_gets_the_same_refusal(registry, choice):
    final = last(
        stream("counting", prompt="a", model=choice, registry=registry, policy=make_policy())
    )
    assert final.status == "error" and final.reason == "invalid_request"
    # an echoed path shows as <server path>: the refusal is the same either way
    shown = final.message.replace("'<server path>'", "X").replace(repr(choice), "X")
    assert shown == (
        "Invalid request for backend 'counting': model=X is not allowed (not one of this "
        "app's models). Fix: choose one of: flat."
    )


def test_a_backend_outside_the_catalogue_is_refused(registry):
    final = last(stream("raising", prompt="a", registry=registry, policy=make_policy()))
    assert final.status == "error" and "backend='raising'" in final.message
    assert "choose one of: counting" in final.message


@pytest.mark.parametrize(
    "field, value, rule",
    [
        ("steps", 51, "at most 50 steps in this app"),
        ("width", 1088, "at most 1024 pixels"),
        ("height", 2048, "at most 1024 pixels"),
        ("num_images", 5, "at most 4 images"),
        ("prompt", "x" * 1001, "at most 1000 characters"),
        ("negative_prompt", "x" * 1001, "at most 1000 characters"),
    ],
)
def test_limits_name_the_field_and_the_rule(registry, field, value, rule):
    fields = {"prompt": "a", field: value}
    final = last(stream("counting", registry=registry, policy=make_policy(), **fields))
    assert final.status == "error" and final.reason == "invalid_request"
    assert f"{field}=" in final.message and rule in final.message


@pytest.mark.parametrize("option", ["device", "dtype", "previewer", "path"])
def test_a_visitor_cannot_set_server_options(registry, option):
    final = last(
        stream(
            "counting",
            prompt="a",
            options={option: "cuda"},
            registry=registry,
            policy=make_policy(),
        )
    )
    assert final.status == "error"
    assert f"options.{option}=" in final.message and "options you may set: scheduler" in (
        final.message
    )


def test_the_apps_own_options_are_applied_after_the_visitors():
    seen = {}

    class OptionsBackend(CountingBackend):
        capabilities = Capabilities(default_size=(64, 64), options={"scheduler": "", "device": ""})

        def generate(self, request, control):
            seen.update(request.options)
            yield from super().generate(request, control)

    entry = CatalogueEntry(id="e", backend="counting", model="flat", options={"device": "cpu"})
    final = last(
        stream(
            "counting",
            prompt="a",
            steps=2,
            options={"scheduler": "euler"},
            registry=registry_with(OptionsBackend()),
            policy=make_policy(catalogue=[entry]),
        )
    )
    assert final.status == "done", final.message
    assert seen == {"scheduler": "euler", "device": "cpu"}


def test_without_a_policy_the_python_api_stays_open(registry):
    final = last(
        stream("counting", prompt="a", steps=120, width=1536, height=64, registry=registry)
    )
    assert final.status == "done", final.message


def test_the_negative_prompt_is_bounded_even_without_a_policy(registry):
    final = last(stream("counting", prompt="a", negative_prompt="x" * 5_000_000, registry=registry))
    assert final.status == "error" and "negative_prompt=" in final.message
    assert "at most 10000 characters" in final.message and len(final.message) < 400


class HangingBackend(Backend):
    """Ignores cancel for a while after its first step, like a stuck pipeline."""

    id = "hanging"
    display_name = "Hanging (test)"
    location = "local"
    capabilities = Capabilities(any_model=True, default_size=(64, 64))

    def generate(self, request, control):
        yield Started(request.steps, request.model or "m", [1], 64, 64)
        control.wait_cancelled(30)


def test_a_run_past_the_time_limit_ends_with_reason_timeout_and_frees_its_slot(registry):
    policy = make_policy(
        catalogue=[CatalogueEntry(id="h", backend="hanging", model="m")],
        limits=Limits(time_limit=0.5),
    )
    started = time.monotonic()
    final = last(stream("hanging", prompt="a", registry=registry, policy=policy))
    assert final.status == "error" and final.reason == "timeout", final.message
    assert "limit of 0.5 s" in final.message
    assert time.monotonic() - started < 10
    assert policy.queue.active() == (0, 0)


class PathLeakingBackend(Backend):
    id = "leaky"
    display_name = "Leaky (test)"
    location = "local"
    capabilities = Capabilities(any_model=True, default_size=(64, 64))

    def generate(self, request, control):
        yield Failed(
            f"Could not load '{request.model}': no such file /root/.cache/huggingface/hub/x "
            "(C:\\Users\\admin\\models)",
            "model_not_found",
        )


def test_errors_carry_no_server_path(registry):
    policy = make_policy(
        catalogue=[CatalogueEntry(id="secret-model", backend="leaky", model="/srv/models/sd")]
    )
    final = last(stream("leaky", prompt="a", registry=registry, policy=policy))
    assert final.status == "error"
    assert "/srv" not in final.message and "/root" not in final.message
    assert "C:\\" not in final.message
    assert "'secret-model'" in final.message and "<server path>" in final.message


def test_policy_from_a_toml_file(tmp_path: Path):
    path = tmp_path / "catalogue.toml"
    path.write_text(
        "max_queue = 3\n[slots]\ncounting = 2\n[limits]\nmax_steps = 9\n"
        '[[catalogue]]\nid = "a"\nbackend = "counting"\nmodel = "flat"\n'
        "visitor_options = []\n"
    )
    policy = Policy.from_file(path)
    assert policy.max_queue == 3 and policy.slots == {"counting": 2}
    assert policy.limits.max_steps == 9 and policy.catalogue[0].visitor_options == ()


def test_a_policy_without_a_catalogue_or_with_repeated_ids_is_refused():
    with pytest.raises(ValueError, match="catalogue is empty"):
        Policy(catalogue=[])
    entry = CatalogueEntry(id="a", backend="b")
    with pytest.raises(ValueError, match="unique"):
        Policy(catalogue=[entry, entry])


# --- the fair queue ----------------------------------------------------------------------------


def test_runs_start_in_arrival_order_with_true_positions():
    queue = FairQueue(slots=lambda backend: 1, max_waiting=10, runs_per_session=1)
    tickets = [queue.join("b", f"s{i}") for i in range(4)]
    assert tickets[0].wait(0)
    assert [t.position for t in tickets] == [0, 1, 2, 3]
    assert not tickets[2].wait(0)  # not its turn while 1 is ahead
    order = []

    def run(ticket, name):
        ticket.wait(5)
        order.append(name)
        ticket.leave()

    threads = [
        threading.Thread(target=run, args=(t, n))
        for n, t in reversed(list(enumerate(tickets[1:], 1)))
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    tickets[0].leave()
    for thread in threads:
        thread.join(5)
    assert order == [1, 2, 3]
    assert queue.active() == (0, 0)


def test_a_full_line_answers_busy_with_a_retry_time():
    queue = FairQueue(slots=lambda backend: 1, max_waiting=2, runs_per_session=1)
    first = queue.join("b", "s0")
    first.wait(0)
    queue.join("b", "s1"), queue.join("b", "s2")
    with pytest.raises(Busy) as caught:
        queue.join("b", "s3", expected_seconds=10)
    assert caught.value.reason == "busy" and caught.value.retry_after == 30.0
    assert "busy" in str(caught.value) and "about 30 s" in str(caught.value)
    queue.join("other-backend", "s3")  # another backend's line is separate


def test_one_active_run_per_session_and_the_slot_returns_when_it_leaves():
    queue = FairQueue(slots=lambda backend: 2, max_waiting=5, runs_per_session=1)
    ticket = queue.join("b", "me")
    with pytest.raises(Busy, match="already have a run"):
        queue.join("b", "me")
    ticket.leave()
    ticket.leave()  # idempotent
    queue.join("b", "me")


def test_two_slots_run_two_at_once():
    queue = FairQueue(slots=lambda backend: 2, max_waiting=5, runs_per_session=1)
    a, b, c = (queue.join("x", s) for s in "abc")
    assert a.wait(0) and b.wait(0) and not c.wait(0)
    b.leave()
    assert c.wait(0)


# --- ownership ---------------------------------------------------------------------------------


def test_cancel_with_another_session_does_nothing_and_says_nothing(monkeypatch):
    from gradio_diffusion_preview import streaming

    monkeypatch.setattr(streaming, "current_session", lambda: "owner")
    registry = registry_with(CountingBackend(step_seconds=0.01))
    run = stream("counting", prompt="a", steps=400, registry=registry)
    first = next(run)
    assert cancel_run(first.run_id, session="intruder") is False
    assert cancel_run("no-such-run", session="intruder") is False
    assert cancel_run(first.run_id, session="owner") is True
    assert last(run).status == "cancelled"


# --- image retention ---------------------------------------------------------------------------


def test_image_files_older_than_the_age_are_removed_with_their_folder(tmp_path):
    now = [0.0]
    retention = ImageRetention(10, clock=lambda: now[0])
    old = tmp_path / "a" / "image.png"
    old.parent.mkdir()
    old.write_bytes(b"x")
    retention.keep(old)
    now[0] = 5
    new = tmp_path / "b" / "image.png"
    new.parent.mkdir()
    new.write_bytes(b"x")
    retention.keep(new)
    assert old.exists()
    now[0] = 11
    assert retention.sweep() == 1
    assert not old.parent.exists() and new.exists() and len(retention) == 1


def test_saving_the_same_file_again_renews_its_age(tmp_path):
    now = [0.0]
    retention = ImageRetention(10, clock=lambda: now[0])
    path = tmp_path / "same" / "image.png"  # Gradio names cached files by their content
    path.parent.mkdir()
    path.write_bytes(b"x")
    retention.keep(path)
    now[0] = 9
    retention.keep(path)
    now[0] = 12
    assert retention.sweep() == 0 and path.exists()


def test_unset_fields_take_defaults_held_to_the_limits(registry):
    # CountingBackend defaults to 20 steps; found by the property test: defaults escaped limits
    policy = make_policy(limits=Limits(max_steps=8, max_side=32))
    final = last(stream("counting", prompt="a", model="flat", registry=registry, policy=policy))
    assert final.status == "error" and "width=64" in final.message  # min_size 64 > 32: refused
    policy = make_policy(limits=Limits(max_steps=8))
    final = last(stream("counting", prompt="a", model="flat", registry=registry, policy=policy))
    assert final.status == "done" and final.total_steps == 8, final.message


# --- choices and controls: what a UI offers is what the policy admits --------------------------


class ChoosyBackend(CountingBackend):
    """Offers a sampler and a previewer from fixed lists, and records the options it ran with."""

    capabilities = Capabilities(
        default_size=(512, 512),
        max_size=2048,
        steps_range=(1, 150),
        default_steps=80,
        max_batch=8,
        options={"scheduler": "", "previewer": "", "seed_mode": "free text"},
        option_choices={"scheduler": ("euler", "ddim"), "previewer": ("rgb", "tiny", "none")},
    )


def choosy_entry(**fields) -> CatalogueEntry:
    defaults = {
        "id": "c",
        "backend": "counting",
        "model": "flat",
        "visitor_options": ("scheduler", "previewer", "seed_mode"),
    }
    return CatalogueEntry(**{**defaults, **fields})


def test_option_choices_are_the_backends_narrowed_by_the_entry():
    policy = make_policy(catalogue=[choosy_entry(option_choices={"previewer": ("none", "rgb")})])
    choices = policy.option_choices(policy.catalogue[0], ChoosyBackend())
    assert choices == {"scheduler": ("euler", "ddim"), "previewer": ("none", "rgb")}
    # an option visitors may not set is not offered, whatever the backend lists
    hidden = make_policy(catalogue=[choosy_entry(visitor_options=("previewer",))])
    assert list(hidden.option_choices(hidden.catalogue[0], ChoosyBackend())) == ["previewer"]


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"scheduler": "lms"}, "choose one of: euler, ddim."),
        ({"previewer": "tiny"}, "choose one of: none, rgb."),  # the backend's, not the entry's
        ({"previewer": "taesd:/root"}, "choose one of: none, rgb."),
    ],
)
def test_a_visitor_must_pick_among_the_choices(options, problem):
    entry = choosy_entry(option_choices={"previewer": ("none", "rgb")})
    final = last(
        stream(
            "counting",
            prompt="a",
            options=options,
            registry=registry_with(ChoosyBackend()),
            policy=make_policy(catalogue=[entry]),
        )
    )
    assert final.status == "error" and final.reason == "invalid_request"
    assert "not one of this app's choices" in final.message and problem in final.message


def test_a_choice_on_offer_runs():
    final = last(
        stream(
            "counting",
            prompt="a",
            steps=2,
            options={"scheduler": "ddim", "previewer": "none", "seed_mode": "anything"},
            registry=registry_with(ChoosyBackend()),
            policy=make_policy(catalogue=[choosy_entry()]),
        )
    )
    assert final.status == "done", final.message


def test_controls_are_the_models_ranges_held_to_the_limits_and_all_admitted():
    limits = Limits(max_steps=50, max_side=500, max_images=2)
    policy = make_policy(catalogue=[choosy_entry()], limits=limits)
    caps = policy.controls(policy.catalogue[0], ChoosyBackend())
    assert caps.steps_range == (1, 50) and caps.default_steps == 50
    assert caps.max_size == 496 and caps.default_size == (496, 496)  # a multiple of 8
    assert caps.max_batch == 2
    # the largest of everything on offer is admitted
    final = last(
        stream(
            "counting",
            prompt="a",
            steps=caps.steps_range[1],
            width=caps.max_size,
            height=caps.max_size,
            num_images=caps.max_batch,
            registry=registry_with(ChoosyBackend()),
            policy=policy,
        )
    )
    assert final.status == "done", final.message


def test_option_choices_must_name_listed_options():
    with pytest.raises(ValueError, match="option_choices names options not in options"):
        Capabilities(options={"scheduler": ""}, option_choices={"sampler": ("euler",)})
    with pytest.raises(ValueError, match="no values"):
        Capabilities(options={"scheduler": ""}, option_choices={"scheduler": ()})


def test_option_choices_and_description_from_a_toml_file(tmp_path: Path):
    path = tmp_path / "catalogue.toml"
    path.write_text(
        '[[catalogue]]\nid = "a"\nbackend = "counting"\nmodel = "flat"\n'
        'option_choices = { previewer = ["none"] }\ndescription = "Flat colours."\n'
    )
    entry = Policy.from_file(path).catalogue[0]
    assert entry.option_choices == {"previewer": ("none",)} and entry.description == "Flat colours."
