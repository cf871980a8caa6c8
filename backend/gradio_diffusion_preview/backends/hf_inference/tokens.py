"""The Hugging Face token: where it comes from, and keeping it out of every text we produce.

A token given in code wins; otherwise huggingface_hub's own discovery applies (``HF_TOKEN``,
``HUGGING_FACE_HUB_TOKEN``, the token file written by ``hf auth login``, OIDC in CI).
``token_source`` answers "is there one, and from where" without a network call or reading the
secret; ``resolve_token`` fetches it for a run. Every message the backend builds passes through
``redact``, so a token a server echoes back never reaches a page, a value or a log.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import SecretStr

TOKEN_HELP = (
    "create a token with the 'Make calls to Inference Providers' permission at "
    "https://huggingface.co/settings/tokens, then set HF_TOKEN in the server's environment "
    "or run `hf auth login` on the server (or pass token=... to HfInferenceBackend in code)"
)
_TOKEN_SHAPE = re.compile(r"\bhf_[A-Za-z0-9_]{8,}")
REDACTED = "hf_***"


def token_source(code_token: SecretStr | None) -> str | None:
    """Where the token would come from ("code", "HF_TOKEN", ...), or None when there is none.

    Network-free and cheap: it looks only at names and the token file's existence.
    """
    if code_token is not None and code_token.get_secret_value():
        return "code"
    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(variable, "").strip():
            return variable
    if os.environ.get("HF_OIDC_RESOURCE"):
        return "OIDC (HF_OIDC_RESOURCE)"
    from huggingface_hub import constants

    if Path(constants.HF_TOKEN_PATH).is_file():
        return "the token file (hf auth login)"
    return None


def resolve_token(code_token: SecretStr | None) -> str | None:
    """The token for a run; may refresh an OAuth token or exchange an OIDC one (network)."""
    if code_token is not None and code_token.get_secret_value():
        return code_token.get_secret_value()
    from huggingface_hub import get_token

    return get_token()


def redact(text: str, *secrets: str | None) -> str:
    """``text`` without the given secrets, nor anything shaped like a Hugging Face token."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _TOKEN_SHAPE.sub(REDACTED, text)
