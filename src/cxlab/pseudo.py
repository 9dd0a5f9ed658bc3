"""Pseudonymisation: subject labels become keyed hashes; the key never enters the store.

``subject_id = HMAC-SHA256(key, label)``, first 12 hex characters. The key is
read from the ``CXLAB_KEY`` environment variable, else from
``~/.config/cxlab/key`` (created on first use with mode 0600). The same label
gives the same id in motion capture, surveys and programme logs, so tables
join; a different key gives unlinkable ids.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from cxlab._check import ConfigError, message

__all__ = ["key_path", "pseudonymise", "read_key"]


def key_path() -> Path:
    """Where the key file lives when ``CXLAB_KEY`` is not set: ``~/.config/cxlab/key``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cxlab" / "key"


def read_key() -> bytes:
    """Return the pseudonymisation key, creating the key file on first use.

    Raises
    ------
    ConfigError
        If ``CXLAB_KEY`` is set but empty, or the key file is unreadable or empty.
    """
    env = os.environ.get("CXLAB_KEY")
    if env is not None:
        if not env.strip():
            raise ConfigError(message("is set but empty", field="CXLAB_KEY",
                                      fix="unset it or give it a long random value"))
        return env.encode()
    path = key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write the key whole under a temporary name, then link it into place: two
        # commands starting at once both end up reading the one key that won.
        fd, tmp = tempfile.mkstemp(prefix=".key-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    try:
        key = path.read_text().strip()
    except OSError as e:
        raise ConfigError(message(f"cannot be read ({e.strerror})", file=path,
                                  fix="check its permissions or set CXLAB_KEY")) from None
    if not key:
        raise ConfigError(message("is empty", file=path, fix="delete it to create a new key "
                                  "(ids will change) or set CXLAB_KEY"))
    return key.encode()


def pseudonymise(label: str, /, *, key: bytes | None = None) -> str:
    """Return the 12-hex pseudonym of a subject label.

    Parameters
    ----------
    label : str
        The raw subject label (e.g. ``"S03"``); surrounding white space is ignored.
    key : bytes, optional
        HMAC key; default :func:`read_key`.

    Returns
    -------
    str
        ``HMAC-SHA256(key, label)`` as hex, first 12 characters.
    """
    k = read_key() if key is None else key
    return hmac.new(k, str(label).strip().encode(), hashlib.sha256).hexdigest()[:12]
