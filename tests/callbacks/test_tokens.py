"""Callback tokens: signed per job, expiring, rotatable keys; ``callback_url()`` only inside a create scope."""

from __future__ import annotations

import pytest

from flyteconnect.callbacks import (
    CallbackScope,
    CallbackSigner,
    CallbacksUnavailable,
    InvalidCallbackToken,
    callback_scope,
    callback_url,
    end_callback_scope,
    load_keys,
)

KEY = b"k" * 32
OTHER = b"o" * 32


def signer(keys: list[bytes], now: float = 1_000.0, ttl: float = 60.0) -> CallbackSigner:
    return CallbackSigner(keys, "https://cb.example.com/", ttl, clock=lambda: now)


def test_a_token_names_its_job_and_verifies() -> None:
    s = signer([KEY])
    token = s.issue("job-1")
    assert s.verify(token) == "job-1"
    assert s.url("job-1").startswith("https://cb.example.com/callback/job-1.")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("job-1", "job-2"),  # another job's id under this job's signature
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: t.rsplit(".", 2)[0] + ".9999999999." + t.rsplit(".", 1)[1],  # expiry pushed out
        lambda t: "garbage",
        lambda t: "a..b",
    ],
)
def test_tampered_tokens_are_refused(mangle: object) -> None:
    s = signer([KEY])
    token = mangle(s.issue("job-1"))  # type: ignore[operator]
    with pytest.raises(InvalidCallbackToken) as info:
        s.verify(token)
    assert not info.value.expired


def test_expired_tokens_are_refused_as_expired() -> None:
    token = signer([KEY], now=1_000.0, ttl=60).issue("job-1")
    assert signer([KEY], now=1_059.0).verify(token) == "job-1"
    with pytest.raises(InvalidCallbackToken, match="expired") as info:
        signer([KEY], now=1_061.0).verify(token)
    assert info.value.expired


def test_rotation_new_key_signs_old_key_still_verifies() -> None:
    old_token = signer([KEY]).issue("job-1")
    rotated = signer([OTHER, KEY])
    new_token = rotated.issue("job-2")
    assert rotated.verify(old_token) == "job-1"
    assert rotated.verify(new_token) == "job-2"
    with pytest.raises(InvalidCallbackToken):
        signer([KEY]).verify(new_token)  # a replica without the new key refuses tokens it signed
    with pytest.raises(InvalidCallbackToken):
        signer([OTHER]).verify(old_token)  # the old key removed: its tokens are dead


def test_signer_refuses_weak_settings() -> None:
    with pytest.raises(ValueError, match="at least one"):
        CallbackSigner([], "https://x")
    with pytest.raises(ValueError, match="16 bytes"):
        CallbackSigner([b"short"], "https://x")
    with pytest.raises(ValueError, match="http"):
        CallbackSigner([KEY], "ftp://x")


def test_keys_from_env_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("FLYTECONNECT_CALLBACK_KEYS", f"{OTHER.decode()}, {KEY.decode()}")
    assert load_keys() == [OTHER, KEY]
    path = tmp_path / "keys"  # type: ignore[operator]
    path.write_text(f"{KEY.decode()}\n\n")
    assert load_keys(str(path)) == [KEY]
    monkeypatch.delenv("FLYTECONNECT_CALLBACK_KEYS")
    with pytest.raises(ValueError, match="no callback signing key"):
        load_keys()


def test_callback_url_needs_a_create_scope() -> None:
    with pytest.raises(CallbacksUnavailable, match="--callback-port"):
        callback_url()
    scope = CallbackScope(signer([KEY]))
    token = callback_scope(scope)
    try:
        first = callback_url()
        assert callback_url() == first  # one job id per create
        assert scope.job_id is not None and f"/callback/{scope.job_id}." in first
    finally:
        end_callback_scope(token)
    with pytest.raises(CallbacksUnavailable):
        callback_url()
