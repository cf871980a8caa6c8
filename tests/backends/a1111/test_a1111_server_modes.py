"""The a1111 backend against servers as they are really started (issue #28): the API alone
(``--nowebui``, no ``/internal/progress``), a fresh server that never saved its settings, and
the first step, which the server's progress does not count."""

from __future__ import annotations

import pytest
from fake_a1111 import FakeA1111, make_backend, make_request, record

from gradio_diffusion_preview import Finished, Started, Status, Step

pytestmark = pytest.mark.paced  # mostly waits on timed steps (tests/conftest.py)


@pytest.fixture
def fake():
    server = FakeA1111(step_time=0.04)
    server.start()
    yield server
    server.stop()


def test_step_one_is_shown_with_its_preview_though_the_servers_progress_is_still_zero(fake):
    fake.faults.hold_after_step = (1, 2)  # two polls answered while only step 1 is done
    backend = make_backend(fake.url)
    run = record(backend, make_request(backend, steps=6))
    steps = run.of(Step)
    assert steps[0].step == 1 and steps[0].preview is not None
    assert [s.step for s in steps] == sorted({s.step for s in steps})  # in order, no repeats
    assert steps[-1].step == 6 and isinstance(run.last, Finished)


def test_a_fresh_server_keeps_its_own_settings_after_a_run(fake):
    """AUTOMATIC1111 and Forge restore only the overrides their opts.data already holds: on a
    server without config.json a preview override would stay for good (and be saved by the
    next options call), so the backend does not send one there."""
    fresh = FakeA1111(step_time=0.02, fresh=True)
    fresh.start()
    try:
        before = dict(fresh.opts), set(fresh.saved)
        backend = make_backend(fresh.url)
        run = record(backend, make_request(backend, steps=4))
        assert isinstance(run.last, Finished)
        assert (dict(fresh.opts), set(fresh.saved)) == before
    finally:
        fresh.stop()


def test_a_server_that_saved_its_settings_gets_the_preview_overrides_and_restores_them(fake):
    fake.faults.hold_after_step = (3, 2)
    backend = make_backend(fake.url)
    run = record(backend, make_request(backend, steps=6))
    assert any(s.step == 3 and s.preview is not None for s in run.of(Step))
    assert fake.opts["show_progress_every_n_steps"] == 10
    assert fake.opts["live_previews_image_format"] == "png"
    assert fake.opts["show_progress_grid"] is True


def test_an_api_only_server_is_seen_at_listing_time_and_runs_without_steps_or_stop():
    """``--nowebui`` serves no /internal/progress: no previews, no queue place, no Stop. The
    listing finds it out, the capabilities say so, and a run says why it shows no steps."""
    server = FakeA1111(step_time=0.02, webui=False)
    server.start()
    try:
        backend = make_backend(server.url)
        assert backend.capabilities.step_events is True  # not known before the listing
        backend.list_models()
        capabilities = backend.capabilities
        assert not capabilities.step_events and not capabilities.step_previews
        assert not capabilities.cancel and not capabilities.finish_early
        run = record(backend, make_request(backend, steps=5))
        assert [type(e) for e in run.events] == [Started, Status, Finished]
        assert run.events[0].preview_size is None
        assert "--nowebui" in run.events[1].message and run.events[1].phase == "generating"
        assert len(server.jobs) == 1 and server.jobs[0].steps_done == 5
    finally:
        server.stop()


def test_an_api_only_server_found_out_by_a_run_is_remembered(fake):
    server = FakeA1111(step_time=0.02, webui=False)
    server.start()
    try:
        backend = make_backend(server.url, models=["v1-5-pruned-emaonly"])
        run = record(backend, make_request(backend, steps=3))
        assert isinstance(run.last, Finished) and not run.of(Step)
        assert backend.capabilities.step_events is False
    finally:
        server.stop()


def test_a_lowvram_server_still_gives_a_preview_of_every_step():
    """With --lowvram / --medvram AUTOMATIC1111 decodes previews in the sampler, on the steps
    where ``sampling_step % show_progress_every_n_steps == 0`` and never for 0; so there the
    run asks for every 1 step, which gives step 1 too (the sampler's step index is stale)."""
    server = FakeA1111(step_time=0.02, lowvram=True)
    server.start()
    try:
        server.lockstep_polls = 2
        backend = make_backend(server.url)
        run = record(backend, make_request(backend, steps=6))
        assert [s.step for s in run.of(Step) if s.preview is not None] == list(range(1, 7))
        assert server.opts["show_progress_every_n_steps"] == 10  # restored
    finally:
        server.stop()


def test_a_model_the_backend_does_not_offer_is_an_invalid_request_before_the_run(fake):
    """As the docs' failure table says (issue #28, 9): refused by validation, naming the
    models; model_not_found is for a listed checkpoint the server no longer has."""
    from gradio_diffusion_preview import InvalidRequest

    backend = make_backend(fake.url)
    with pytest.raises(InvalidRequest) as refused:
        make_request(backend, model="no-such-model")
    assert refused.value.reason == "invalid_request"
    assert "v1-5-pruned-emaonly" in str(refused.value)
    assert ("POST", "/sdapi/v1/txt2img") not in fake.requests
