"""Remote endpoints, configured on the server: in code, in environment variables or in a file.

A remote backend (another Gradio app, AUTOMATIC1111/Forge/SD.Next, ComfyUI) talks to an address
that only the server's owner chooses; a visitor's request never names one. Each configured
endpoint becomes one backend whose id is the endpoint's ``id``.

- In code: build the backend with an ``Endpoint`` and register it, e.g.
  ``get_registry().add_backends(A1111Backend(Endpoint(id="studio", kind="a1111", url=...)))``.
- In the environment, one endpoint per kind: ``DIFFUSION_PREVIEW_<KIND>_URL`` (kind in upper
  case: ``GRADIO``, ``A1111``, ``COMFYUI``), with ``..._TOKEN`` or ``..._USER`` and
  ``..._PASSWORD`` when the endpoint needs them; the backend id is the kind.
- In a file named by ``DIFFUSION_PREVIEW_ENDPOINTS`` (TOML or JSON): a list of endpoints under
  ``endpoints`` (``[[endpoints]]`` tables in TOML). Secrets are best given as the *name* of an
  environment variable (``token_env``, ``password_env``) so the file holds none.

Secrets are ``SecretStr``: they print as ``**********`` and ``public()`` leaves them out.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

ENDPOINTS_FILE_VARIABLE = "DIFFUSION_PREVIEW_ENDPOINTS"
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

if TYPE_CHECKING:
    from .backend import Backend


class EndpointConfigError(ValueError):
    """An endpoint's configuration is wrong; ``str()`` names the endpoint, field and fix."""


class Endpoint(BaseModel):
    """One remote endpoint and how to reach it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="The backend id it registers as (lower case, digits, -_.).")
    kind: str = Field(description="Which protocol: gradio, a1111 or comfyui.")
    url: str = Field(description="The base address, http(s)://host:port[/path], or a Space id.")
    display_name: str | None = None
    token: SecretStr | None = None
    """A bearer token (for a Gradio Space: a Hugging Face token). Sent only to this endpoint."""
    token_env: str | None = None
    """The name of an environment variable holding ``token`` (read when used)."""
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = None
    models: list[str] | None = None
    """The models offered; ``None`` offers what the server lists."""
    timeout: float = Field(600.0, gt=0)
    """The longest a run may take, from submit to the final image, in seconds."""
    connect_timeout: float = Field(10.0, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)
    """Kind-specific settings (which endpoint of a Gradio app, a ComfyUI workflow, ...)."""

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("use lower-case letters, digits, '-', '_' or '.', e.g. 'studio-a1111'")
        return value

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value:
            raise ValueError("give the endpoint's address, e.g. http://127.0.0.1:7860")
        return value

    def secret_token(self) -> str | None:
        """The token, from ``token`` or the variable ``token_env`` names; None when unset."""
        if self.token is not None:
            return self.token.get_secret_value() or None
        return os.environ.get(self.token_env) or None if self.token_env else None

    def secret_password(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        return os.environ.get(self.password_env) if self.password_env else None

    def public(self) -> dict[str, Any]:
        """What may be shown (CLI, logs): everything but secrets, which appear only as set or
        not set."""
        data = self.model_dump(mode="json", exclude={"token", "password", "options"})
        data["url"] = public_url(self.url)  # a user:password@ or ?token=... stays unprinted
        data["token"] = "set" if self.secret_token() else "not set"
        data["password"] = "set" if self.secret_password() else "not set"
        data["options"] = sorted(self.options)
        return data


_URL = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<authority>[^/?#]*)(?P<path>[^?#]*)")


def public_url(url: str) -> str:
    """``url`` without its user name, password, query or fragment (any may hold a secret: a
    token in ``?token=...`` too), fit to show in a message. The host is kept as written
    (IPv6 brackets included), and a value that is not an address, such as a Space id
    (``owner/name``), is returned unchanged."""
    match = _URL.match(url)
    if match is None:
        return url
    host = match["authority"].rpartition("@")[2]
    return f"{match['scheme']}{host}{match['path']}"


def endpoints_of(kind: str, environ: dict[str, str] | None = None) -> list[Endpoint]:
    """The endpoints of ``kind`` configured in the environment and the endpoints file.

    Raises ``EndpointConfigError`` naming the problem when the configuration is wrong.
    """
    environ = os.environ if environ is None else environ
    found = [e for e in _from_file(environ.get(ENDPOINTS_FILE_VARIABLE)) if e.kind == kind]
    single = _from_environment(kind, environ)
    if single is not None and all(e.id != single.id for e in found):
        found.insert(0, single)
    return found


def backends_for_endpoints(
    kind: str,
    make: Callable[[Endpoint], Backend],
    unconfigured: Callable[[str | None], Backend],
) -> list[Backend]:
    """What a remote plugin registers: one backend per configured endpoint of ``kind``.

    With none configured, one backend with the id ``kind`` made by ``unconfigured(None)``, whose
    availability says how to configure one. With a configuration that cannot be read, or an
    endpoint that ``make`` refuses (``EndpointConfigError``), ``unconfigured(problem)`` takes its
    place under its id, so the app keeps serving and the ``plugins`` CLI shows what to fix.
    """

    def stand_in(backend_id: str, problem: str | None) -> Backend:
        backend = unconfigured(problem)
        backend.id = backend_id
        return backend

    try:
        endpoints = endpoints_of(kind)
    except EndpointConfigError as error:
        return [stand_in(kind, str(error))]
    if not endpoints:
        return [stand_in(kind, None)]
    backends = []
    for endpoint in endpoints:
        try:
            backends.append(make(endpoint))
        except EndpointConfigError as error:
            backends.append(stand_in(endpoint.id, str(error)))
    return backends


def _from_environment(kind: str, environ: dict[str, str]) -> Endpoint | None:
    prefix = f"DIFFUSION_PREVIEW_{kind.upper()}_"
    url = environ.get(prefix + "URL")
    if not url:
        return None
    fields: dict[str, Any] = {"id": kind, "kind": kind, "url": url}
    if environ.get(prefix + "TOKEN"):
        fields["token_env"] = prefix + "TOKEN"
    if environ.get(prefix + "USER"):
        fields["username"] = environ[prefix + "USER"]
        fields["password_env"] = prefix + "PASSWORD"
    return _endpoint(fields, f"the environment ({prefix}URL)")


def _from_file(path: str | None) -> list[Endpoint]:
    if not path:
        return []
    data = read_config_file(
        path,
        variable=ENDPOINTS_FILE_VARIABLE,
        what="endpoints file",
        docs="docs/remote.md",
        error=EndpointConfigError,
    )
    entries = data.get("endpoints") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise EndpointConfigError(
            f"The endpoints file '{path}' has no list named 'endpoints'. Fix: write "
            '[[endpoints]] tables (TOML) or {"endpoints": [...]} (JSON).'
        )
    endpoints = [_endpoint(entry, f"'{path}', endpoint {n + 1}") for n, entry in enumerate(entries)]
    ids = [e.id for e in endpoints]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise EndpointConfigError(
            f"The endpoints file '{path}' uses the id '{duplicated[0]}' twice. Fix: give each "
            "endpoint its own id."
        )
    return endpoints


def read_config_file(
    path: str, *, variable: str, what: str, docs: str, error: type[Exception]
) -> Any:
    """The data of a TOML (or, by a .json name, JSON) configuration file named by the
    environment variable ``variable``; raises ``error`` naming the problem and the fix (``docs``:
    where its format is described) when the file cannot be read or parsed."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as problem:
        raise error(
            f"{variable} names '{path}', which cannot be read ({type(problem).__name__}). "
            f"Fix: point it at a TOML or JSON {what}."
        ) from None
    try:
        if file.suffix.lower() == ".json":
            return json.loads(text)
        return _toml(what, error).loads(text)
    except ValueError as problem:
        raise error(
            f"The {what} '{path}' is not valid {file.suffix.lstrip('.') or 'TOML'}: {problem}. "
            f"Fix: see {docs} for its format."
        ) from None


def _toml(what: str = "endpoints file", error: type[Exception] = EndpointConfigError):
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            raise error(
                f"Reading a TOML {what} needs Python 3.11 or `pip install tomli`; "
                "or write the file as JSON (a .json name)."
            ) from None
    return tomllib


def _endpoint(fields: Any, where: str) -> Endpoint:
    if not isinstance(fields, dict):
        raise EndpointConfigError(f"In {where}: an endpoint must be a table of fields.")
    try:
        return Endpoint(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "endpoint"
        raise EndpointConfigError(
            f"In {where}: {field}: {first['msg']}. Fix: see docs/remote.md for the fields."
        ) from None
