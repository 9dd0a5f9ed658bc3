import hashlib
import hmac
import stat

import pytest

from cxlab._check import ConfigError
from cxlab.pseudo import key_path, pseudonymise, read_key


def test_pseudonym_is_truncated_hmac_sha256():
    want = hmac.new(b"k", b"S01", hashlib.sha256).hexdigest()[:12]
    assert pseudonymise(" S01 ", key=b"k") == want


def test_same_label_same_id_and_key_change_changes_it(monkeypatch):
    a = pseudonymise("S01")
    assert pseudonymise("S01") == a
    monkeypatch.setenv("CXLAB_KEY", "another")
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
