import hashlib
import hmac
import stat

import pytest

from cxlab._check import ConfigError
from cxlab.pseudo import key_bits, key_check, key_path, pseudonymise, read_key, require_key


def test_pseudonym_is_truncated_hmac_sha256():
    want = hmac.new(b"k", b"S01", hashlib.sha256).hexdigest()[:12]
    assert pseudonymise(" S01 ", key=b"k") == want


def test_same_label_same_id_and_key_change_changes_it(monkeypatch):
    a = pseudonymise("S01")
    assert pseudonymise("S01") == a
    monkeypatch.setenv("CXLAB_KEY", "another-key-0f9e8d7c6b5a49382716ffeeddccbbaa")
    assert pseudonymise("S01") != a


def test_key_file_created_with_mode_0600(monkeypatch, tmp_path):
    monkeypatch.delenv("CXLAB_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    k = read_key()
    assert key_path() == tmp_path / "cxlab" / "key"
    assert stat.S_IMODE(key_path().stat().st_mode) == 0o600
    assert read_key() == k and len(k) == 64


def test_empty_env_key_is_refused(monkeypatch):
    monkeypatch.setenv("CXLAB_KEY", " ")
    with pytest.raises(ConfigError, match="CXLAB_KEY"):
        read_key()


def test_concurrent_first_use_agrees_on_one_key(monkeypatch, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.delenv("CXLAB_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: read_key(), range(32)))
    assert len(set(keys)) == 1
    assert [p.name for p in (tmp_path / "cxlab").iterdir()] == ["key"]


@pytest.mark.parametrize(
    "weak", ["a", "S01", "password123", "ab" * 32, "x" * 64, "test-key-not-secret"]
)
def test_weak_keys_are_refused_with_the_fix(monkeypatch, weak):
    monkeypatch.setenv("CXLAB_KEY", weak)
    with pytest.raises(ConfigError, match=r"CXLAB_KEY.*too weak.*token_hex"):
        read_key()


def test_one_letter_key_would_let_labels_be_recovered_so_it_is_refused(monkeypatch):
    # the attack the check prevents: with key "k", the pseudonym of S01 is found by trying
    # every one-letter key against a guessable label
    stored = pseudonymise("S01", key=b"k")
    found = [chr(c) for c in range(32, 127) if pseudonymise("S01", key=chr(c).encode()) == stored]
    assert found == ["k"]
    monkeypatch.setenv("CXLAB_KEY", "k")
    with pytest.raises(ConfigError, match="too weak"):
        pseudonymise("S01")


def test_key_bits_of_random_keys_hold_their_entropy():
    import secrets

    # 32 random hex digits carry exactly 128 bits; the key file's 64 hex carry 256
    assert min(key_bits(secrets.token_hex(16)) for _ in range(200)) >= 128
    assert key_bits(secrets.token_hex(32)) >= 256
    assert key_bits("") == 0 and key_bits("a") <= 1


def test_env_key_is_trimmed_like_the_key_file(monkeypatch, tmp_path):
    key = "0123456789abcdef0123456789abcdef-lab"
    monkeypatch.setenv("CXLAB_KEY", key)
    plain = pseudonymise("S01")
    monkeypatch.setenv("CXLAB_KEY", key + "\n")
    assert pseudonymise("S01") == plain
    monkeypatch.setenv("CXLAB_KEY", f"  {key}\r\n")
    assert pseudonymise("S01") == plain
    monkeypatch.delenv("CXLAB_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    key_path().parent.mkdir(parents=True)
    key_path().write_text(key + "\n")
    key_path().chmod(0o600)
    assert (
        pseudonymise("S01")
        == plain
        == hmac.new(key.encode(), b"S01", hashlib.sha256).hexdigest()[:12]
    )


def test_weak_key_file_is_refused_naming_the_file(monkeypatch, tmp_path):
    monkeypatch.delenv("CXLAB_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    key_path().parent.mkdir(parents=True)
    key_path().write_text("secret\n")
    key_path().chmod(0o600)
    with pytest.raises(ConfigError, match=r"key: .*too weak"):
        read_key()


def test_key_file_readable_by_others_warns(monkeypatch, tmp_path):
    from cxlab._check import CxlabWarning

    monkeypatch.delenv("CXLAB_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    read_key()  # created 0600: no warning
    key_path().chmod(0o644)
    with pytest.warns(CxlabWarning, match=r"other users.*chmod 600"):
        read_key()
    key_path().chmod(0o600)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_key()


@pytest.mark.parametrize(("n_hex", "refused"), [(30, True), (32, False)])
def test_the_key_limit_is_128_bits(monkeypatch, n_hex, refused):
    """README "Private": a random hex key of 30 digits (120 bits) is refused, one of 32
    (128 bits) is used."""
    import random

    key = "".join(random.Random(n_hex).choices("0123456789abcdef", k=n_hex))
    monkeypatch.setenv("CXLAB_KEY", key)
    if refused:
        with pytest.raises(ConfigError, match="about 120 bits of entropy, at least 128 needed"):
            read_key()
    else:
        assert read_key() == key.encode()


def test_key_check_is_a_keyed_tag_by_hand_and_tells_keys_apart(monkeypatch):
    key = read_key()
    want = hmac.new(key, b"\x00cxlab key check v2", hashlib.sha256).hexdigest()[:16]
    assert key_check() == key_check(key) == want
    monkeypatch.setenv("CXLAB_KEY", "another-key-0f9e8d7c6b5a49382716ffeeddccbbaa")
    assert key_check() != want


def test_a_worker_with_another_key_or_none_is_refused_and_makes_none(monkeypatch, tmp_path):
    """A worker of another machine must hold the run's key: with it, its key is returned;
    with another key, or with no key at all (no key file is created there), one message
    names CXLAB_KEY, both checks and the fix."""
    run_key = read_key()
    expected = key_check(run_key)
    assert require_key(expected) == run_key
    monkeypatch.setenv("CXLAB_KEY", "another-key-0f9e8d7c6b5a49382716ffeeddccbbaa")
    with pytest.raises(
        ConfigError,
        match=rf"^CXLAB_KEY: .*key check [0-9a-f]{{16}}, expected {expected}.*"
        r"set CXLAB_KEY on every worker",
    ):
        require_key(expected)
    monkeypatch.delenv("CXLAB_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(
        ConfigError, match=r"no pseudonymisation key.*set CXLAB_KEY on every worker"
    ):
        require_key(expected)
    assert not key_path().exists()  # never created on a worker
    read_key()  # the run's own machine creates it on first use, as before
    assert key_path().exists()
