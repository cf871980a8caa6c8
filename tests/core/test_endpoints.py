"""Remote endpoints are configured on the server (code, environment, a file), never by a
request, and their secrets never show."""

from __future__ import annotations

import json

import pytest

from gradio_diffusion_preview.endpoints import (
    ENDPOINTS_FILE_VARIABLE,
    Endpoint,
    EndpointConfigError,
    backends_for_endpoints,
    endpoints_of,
)


def test_one_endpoint_per_kind_from_the_environment():
    environ = {
        "DIFFUSION_PREVIEW_A1111_URL": "http://127.0.0.1:7861/",
        "DIFFUSION_PREVIEW_A1111_USER": "ann",
        "DIFFUSION_PREVIEW_A1111_PASSWORD": "s3cret-canary",
    }
    [endpoint] = endpoints_of("a1111", environ)
    assert (endpoint.id, endpoint.url, endpoint.username) == (
        "a1111",
        "http://127.0.0.1:7861",
        "ann",
    )
    assert endpoints_of("comfyui", environ) == []
    assert "s3cret-canary" not in repr(endpoint) and "s3cret-canary" not in str(endpoint.public())


def test_secrets_written_into_an_endpoints_url_are_not_shown():
    """A URL may carry a password (``user:pw@``) or a token (``?token=``); ``public()``, which
    the ``plugins`` CLI prints, shows the address without them."""
    environ = {
        "DIFFUSION_PREVIEW_A1111_URL": "http://ann:pw-canary@10.0.0.5:7861/sd?token=t-canary"
    }
    [endpoint] = endpoints_of("a1111", environ)
    shown = json.dumps(endpoint.public())
    assert "pw-canary" not in shown and "t-canary" not in shown
    assert endpoint.public()["url"] == "http://10.0.0.5:7861/sd"


def test_endpoints_from_a_toml_file_with_secrets_by_variable_name(tmp_path, monkeypatch):
    file = tmp_path / "endpoints.toml"
    file.write_text(
        '[[endpoints]]\nid = "studio"\nkind = "comfyui"\nurl = "http://127.0.0.1:8188"\n'
        'models = ["sd15.safetensors"]\n\n'
        '[[endpoints]]\nid = "space"\nkind = "gradio"\nurl = "someone/space"\n'
        'token_env = "SPACE_TOKEN"\n'
    )
    monkeypatch.setenv("SPACE_TOKEN", "hf_canary")
    environ = {ENDPOINTS_FILE_VARIABLE: str(file)}
    [studio] = endpoints_of("comfyui", environ)
    [space] = endpoints_of("gradio", environ)
    assert studio.models == ["sd15.safetensors"] and studio.secret_token() is None
    assert space.secret_token() == "hf_canary"
    assert space.public()["token"] == "set" and "hf_canary" not in json.dumps(space.public())


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not = [toml", "is not valid toml"),
        ('[[other]]\nid = "x"', "has no list named 'endpoints'"),
        ('[[endpoints]]\nid = "Bad Id"\nkind = "a1111"\nurl = "http://x"', "endpoint 1: id:"),
        ('[[endpoints]]\nid = "x"\nkind = "a1111"', "endpoint 1: url: Field required"),
        ('[[endpoints]]\nid = "x"\nkind = "a1111"\nurl = "http://x"\nport = 3', "port"),
        (
            '[[endpoints]]\nid = "x"\nkind = "a1111"\nurl = "http://a"\n'
            '[[endpoints]]\nid = "x"\nkind = "a1111"\nurl = "http://b"',
            "uses the id 'x' twice",
        ),
    ],
)
def test_a_wrong_endpoints_file_is_a_clear_error(tmp_path, content, says):
    file = tmp_path / "endpoints.toml"
    file.write_text(content)
    with pytest.raises(EndpointConfigError, match="Fix:") as error:
        endpoints_of("a1111", {ENDPOINTS_FILE_VARIABLE: str(file)})
    assert says in str(error.value)


def test_a_missing_endpoints_file_is_a_clear_error(tmp_path):
    with pytest.raises(EndpointConfigError, match="cannot be read"):
        endpoints_of("a1111", {ENDPOINTS_FILE_VARIABLE: str(tmp_path / "none.json")})


def test_a_token_given_in_code_is_sent_as_is_and_never_printed():
    endpoint = Endpoint(id="x", kind="gradio", url="http://127.0.0.1:1", token="hf_code_canary")
    assert endpoint.secret_token() == "hf_code_canary"
    assert "hf_code_canary" not in repr(endpoint) + str(endpoint.public())


class _Remote:
    """Stands for a remote backend: made from an endpoint, or a stand-in saying what to fix."""

    id = "toy"

    def __init__(self, endpoint: Endpoint | None = None, problem: str | None = None) -> None:
        if endpoint is not None and endpoint.options.get("bad"):
            raise EndpointConfigError("option 'bad' is wrong. Fix: remove it.")
        self.endpoint, self.problem = endpoint, problem
        if endpoint is not None:
            self.id = endpoint.id


def _plugin_backends() -> list[_Remote]:
    return backends_for_endpoints("toy", _Remote, lambda problem: _Remote(problem=problem))


def test_a_remote_plugin_registers_one_backend_per_endpoint_or_a_stand_in(tmp_path, monkeypatch):
    monkeypatch.delenv(ENDPOINTS_FILE_VARIABLE, raising=False)
    [stand_in] = _plugin_backends()
    assert (stand_in.id, stand_in.endpoint, stand_in.problem) == ("toy", None, None)

    file = tmp_path / "endpoints.json"
    file.write_text(
        json.dumps(
            {
                "endpoints": [
                    {"id": "one", "kind": "toy", "url": "http://127.0.0.1:1"},
                    {
                        "id": "two",
                        "kind": "toy",
                        "url": "http://127.0.0.1:2",
                        "options": {"bad": 1},
                    },
                    {"id": "other", "kind": "a1111", "url": "http://127.0.0.1:3"},
                ]
            }
        )
    )
    monkeypatch.setenv(ENDPOINTS_FILE_VARIABLE, str(file))
    one, two = _plugin_backends()
    assert (one.id, one.endpoint.url, one.problem) == ("one", "http://127.0.0.1:1", None)
    assert (two.id, two.endpoint, two.problem) == (
        "two",
        None,
        "option 'bad' is wrong. Fix: remove it.",
    )

    file.write_text("{not json")
    [broken] = _plugin_backends()
    assert broken.id == "toy" and broken.endpoint is None and "endpoints file" in broken.problem
