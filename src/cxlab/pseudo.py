"""Pseudonymisation: subject labels become keyed hashes; the key never enters the store.

``subject_id = HMAC-SHA256(key, label)``, first 12 hex characters. The key is
read from the ``CXLAB_KEY`` environment variable, else from
``~/.config/cxlab/key`` (created on first use with mode 0600). The same label
gives the same id in motion capture, surveys and programme logs, so tables
join; a different key gives unlinkable ids. Workers of a run check that they hold the
key of the process that started it (:func:`key_check`, :func:`require_key`): on a
cluster, a worker with its own key would give its files' subjects other ids.

The key is trimmed of surrounding white space wherever it comes from (a
trailing newline in ``CXLAB_KEY`` must not change every pseudonym), and a key
whose estimated entropy is below :data:`MIN_KEY_BITS` is refused: with a short
or repetitive key, anyone holding the store can recover both the key and the
labels by trying candidates (:func:`key_bits`). A key file that group or others
can read gives a :class:`~cxlab._check.CxlabWarning`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import os
import secrets
import stat
import zlib
from pathlib import Path

from cxlab._check import ConfigError, message, warn
from cxlab._fs import create_once

__all__ = [
    "MIN_KEY_BITS",
    "key_bits",
    "key_check",
    "key_path",
    "pseudonymise",
    "read_key",
    "require_key",
]

#: Least estimated entropy of an accepted key, bits (16 bytes).
MIN_KEY_BITS = 128
_NEW_KEY = "python -c 'import secrets; print(secrets.token_hex(32))'"


def key_path() -> Path:
    """Where the key file lives when ``CXLAB_KEY`` is not set: ``~/.config/cxlab/key``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cxlab" / "key"


def key_bits(key: str, /) -> float:
    """A conservative estimate of a key's entropy, bits.

    The smaller of two estimates, each an upper bound for keys of its kind:

    * per character, ``min(log2(alphabet), log2(distinct) + 1)`` bits, where the
      alphabet is the union of the character classes the key uses (hex digits
      16, lower case 26, upper case 26, digits 10, other printable 33) and
      ``distinct`` is the number of different characters in it (a key of few
      symbols cannot carry the alphabet's bits);
    * 8 bits per byte of the key compressed by DEFLATE beyond an empty input
      (a repeated pattern such as ``abab...`` compresses to almost nothing).

    A random hex string of 32 characters scores 128 bits, the key file cxlab
    creates (64 hex) 256 bits; ``"a"`` scores 1 bit, ``"ab" * 32`` 40 bits.

    Parameters
    ----------
    key : str
        The key as text, already trimmed.

    Returns
    -------
    float
        Estimated entropy, bits.
    """
    if not key:
        return 0.0
    hexdigits = set("0123456789abcdef")
    if set(key) <= hexdigits or set(key) <= set("0123456789ABCDEF"):
        alphabet = 16
    else:
        alphabet = (
            26 * any(c.islower() for c in key)
            + 26 * any(c.isupper() for c in key)
            + 10 * any(c.isdigit() for c in key)
            + 33 * any(not c.isalnum() for c in key)
        )
    per_char = min(math.log2(max(alphabet, 2)), math.log2(len(set(key))) + 1)
    raw = key.encode()
    packed = 8 * (len(zlib.compress(raw, 9)) - len(zlib.compress(b"", 9)))
    return float(min(len(key) * per_char, packed))


def _checked(key: str, where: dict) -> bytes:
    bits = key_bits(key)
    if bits < MIN_KEY_BITS:
        raise ConfigError(
            message(
                f"is too weak to pseudonymise with (about {bits:.0f} bits of entropy, at least "
                f"{MIN_KEY_BITS} needed): the key and the labels could be recovered from the store",
                **where,
                value=f"{len(key)} characters",
                fix=f"use a long random key, e.g. the output of {_NEW_KEY} (ids will change)",
            )
        )
    return key.encode()


def read_key(*, create: bool = True) -> bytes:
    """Return the pseudonymisation key, creating the key file on first use.

    The key (from ``CXLAB_KEY`` or the file) is trimmed of surrounding white space.

    Parameters
    ----------
    create : bool
        Create the key file when there is neither ``CXLAB_KEY`` nor a file. A worker
        of another machine passes False (:func:`require_key`): a key made there would
        give its files other pseudonyms than the rest of the run's.

    Raises
    ------
    ConfigError
        If ``CXLAB_KEY`` is set but empty, the key file is unreadable or empty, or the key
        has fewer than :data:`MIN_KEY_BITS` bits of estimated entropy (:func:`key_bits`).

    Warns
    -----
    CxlabWarning
        The key file can be read by its group or by others.
    """
    env = os.environ.get("CXLAB_KEY")
    if env is not None:
        if not env.strip():
            raise ConfigError(
                message(
                    "is set but empty",
                    field="CXLAB_KEY",
                    fix="unset it or give it a long random value",
                )
            )
        return _checked(env.strip(), {"field": "CXLAB_KEY"})
    path = key_path()
    if not path.exists() and not create:
        raise ConfigError(
            message(
                "has no pseudonymisation key (neither CXLAB_KEY nor the key file)",
                file=path,
                field="CXLAB_KEY",
                fix="set CXLAB_KEY on every worker to the key of the machine that starts the "
                "run (its ~/.config/cxlab/key), or share that file with the workers",
            )
        )
    if not path.exists():
        # two commands starting at once both end up reading the one key that won
        create_once(path, secrets.token_hex(32).encode(), mode=0o600, prefix=".key-")
    try:
        key = path.read_text().strip()
    except OSError as e:
        raise ConfigError(
            message(
                f"cannot be read ({e.strerror})",
                file=path,
                fix="check its permissions or set CXLAB_KEY",
            )
        ) from None
    if not key:
        raise ConfigError(
            message(
                "is empty",
                file=path,
                fix="delete it to create a new key (ids will change) or set CXLAB_KEY",
            )
        )
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            warn(
                "can be read by other users, who could then link pseudonyms to labels",
                file=path,
                value=oct(mode),
                fix=f"chmod 600 {path}",
            )
    return _checked(key, {"file": path})


_CHECK_LABEL = b"\x00cxlab key check v2"


def key_check(key: bytes | None = None, /) -> str:
    """A short public tag of a key, to tell whether two processes hold the same one.

    ``HMAC-SHA256(key, "\\x00cxlab key check v2")``, first 16 hex characters: the same key
    gives the same tag, another key another (2**-64 chance of a clash); the tag does not
    give the key back (an HMAC, like the pseudonyms themselves). Its first 12 digits are
    the pseudonym of that text, a label no subject carries; the tag is public.

    Parameters
    ----------
    key : bytes, optional
        Default :func:`read_key`.
    """
    k = read_key() if key is None else key
    return hmac.new(k, _CHECK_LABEL, hashlib.sha256).hexdigest()[:16]


def require_key(expected: str, /) -> bytes:
    """This process's key, checked to be the one whose :func:`key_check` is ``expected``
    (the key of the process that started the run).

    An ingest worker pseudonymises the subject labels it finds inside files (C3D label
    prefixes, export headers). On a cluster, a worker on another machine reads its own
    ``CXLAB_KEY`` or key file: a missing or other key would give its files other
    pseudonyms than the rest of the run, which would no longer join. Never creates a key.

    Raises
    ------
    ConfigError
        No key here, or not the expected one; the message says how to give every worker
        the run's key.
    """
    key = read_key(create=False)
    got = key_check(key)
    if got != expected:
        raise ConfigError(
            message(
                f"this worker's pseudonymisation key is not the key the run started with "
                f"(key check {got}, expected {expected}); its files would get other "
                "pseudonyms",
                field="CXLAB_KEY",
                fix="set CXLAB_KEY on every worker to the key of the machine that starts the "
                "run (its ~/.config/cxlab/key), or share that file with the workers",
            )
        )
    return key


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
