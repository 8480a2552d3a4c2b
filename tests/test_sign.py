"""minisign-format keys and signatures, checked against Debian's real `minisign` binary."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from mirror.errors import KeyFileError, SignatureError, SigningError
from mirror.trust import minisign
from mirror.trust.minisign import (
    PublicKey,
    SecretKey,
    generate_key,
    load_public_key,
    load_secret_key,
    parse_public_key,
    parse_secret_key,
    parse_signature,
    secret_key_bytes,
    sign_digest,
    verify,
    verify_digest,
    write_key_pair,
)

from stock_minisign import minisign_binary

# scrypt N=2^14 (16 MiB): fast enough for tests, still accepted by libsodium and minisign
FAST_KDF = {"kdf_opslimit": 524_288, "kdf_memlimit": 16_777_216}
DATA = b"<html>an article</html>\n"
COMMENT = "path:articles/2026/11/a.html revision:3"


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "MINISIGN_PASSWORD"}
    return subprocess.run(
        [minisign_binary(), *args], input=stdin, capture_output=True, text=True, timeout=60, env=env
    )


@pytest.fixture(scope="module")
def key() -> SecretKey:
    return generate_key()


@pytest.fixture
def pair(tmp_path: Path, key: SecretKey) -> tuple[Path, Path]:
    secret, public = tmp_path / "keys" / "mirror.key", tmp_path / "keys" / "mirror.pub"
    write_key_pair(key, secret, public, None)
    return secret, public


def lines(signature: bytes) -> list[str]:
    return signature.decode().splitlines()


def join(parts: list[str]) -> bytes:
    return ("\n".join(parts) + "\n").encode()


# --- round trips ---------------------------------------------------------------------


def test_sign_and_verify_round_trip(key: SecretKey) -> None:
    signature = minisign.sign(key, DATA, COMMENT)
    assert verify(key.public, DATA, signature) == COMMENT
    parsed = parse_signature(signature)
    assert parsed.key_id == key.key_id
    assert parsed.trusted_comment == COMMENT


def test_digest_variants_match_whole_data(key: SecretKey) -> None:
    hasher = minisign.new_hasher()
    for chunk in (DATA[:5], DATA[5:]):
        hasher.update(chunk)
    signature = sign_digest(key, hasher.digest(), COMMENT)
    assert verify(key.public, DATA, signature) == COMMENT
    assert (
        verify_digest(key.public, minisign.digest(DATA), minisign.sign(key, DATA, COMMENT))
        == COMMENT
    )


def test_public_key_text_round_trips(key: SecretKey) -> None:
    public = key.public
    assert public.line().startswith("RW")
    assert len(public.line()) == 56
    assert parse_public_key(public.file_text()) == public
    assert parse_public_key(public.line()) == public
    assert parse_public_key("  " + public.line() + "\r\n") == public
    assert public.key_id_hex == public.key_id[::-1].hex().upper()
    assert public.file_text().startswith(
        f"untrusted comment: minisign public key {public.key_id_hex}\n"
    )


def test_secret_key_bytes_round_trip_unencrypted_and_encrypted(key: SecretKey) -> None:
    assert parse_secret_key(secret_key_bytes(key, None), None) == key
    encrypted = secret_key_bytes(key, "correct horse", **FAST_KDF)
    assert parse_secret_key(encrypted, "correct horse") == key
    assert key.seed not in base64.b64decode(encrypted.splitlines()[1])


def test_secrets_never_printed(key: SecretKey, tmp_path: Path) -> None:
    for text in (repr(key), str(key)):
        assert key.seed.hex() not in text
        assert repr(key.seed) not in text
    path = tmp_path / "k"
    path.write_bytes(secret_key_bytes(key, "hunter2-passphrase", **FAST_KDF))
    path.chmod(0o600)
    with pytest.raises(KeyFileError) as caught:
        load_secret_key(path, "wrong-passphrase")
    assert "hunter2" not in str(caught.value)
    assert "wrong-passphrase" not in str(caught.value)


def test_key_pair_files_and_modes(pair: tuple[Path, Path], key: SecretKey) -> None:
    secret, public = pair
    assert secret.stat().st_mode & 0o777 == 0o600
    assert load_secret_key(secret, None) == key
    assert load_public_key(public) == key.public


# --- against the real minisign binary ------------------------------------------------


def test_real_minisign_verifies_our_signature(
    tmp_path: Path, pair: tuple[Path, Path], key: SecretKey
) -> None:
    data = tmp_path / "page.html"
    data.write_bytes(DATA)
    (tmp_path / "page.html.minisig").write_bytes(minisign.sign(key, DATA, COMMENT))
    result = run("-Vm", str(data), "-p", str(pair[1]))
    assert result.returncode == 0, result.stderr
    assert f"Trusted comment: {COMMENT}" in result.stdout
    result = run("-Vm", str(data), "-P", key.public.line(), "-Q")
    assert result.stdout == COMMENT + "\n"


def test_real_minisign_with_explicit_signature_file_and_long_comment(
    tmp_path: Path, pair: tuple[Path, Path], key: SecretKey
) -> None:
    data, signature = tmp_path / "big.bin", tmp_path / "elsewhere.sig"
    payload = os.urandom(300_000)
    data.write_bytes(payload)
    comment = "url:https://example.org/" + "é" * 3_000 + "\tend"
    signature.write_bytes(minisign.sign(key, payload, comment))
    result = run("-Vm", str(data), "-x", str(signature), "-p", str(pair[1]), "-Q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == comment + "\n"


def test_real_minisign_refuses_our_signature_on_tampered_data(
    tmp_path: Path, pair: tuple[Path, Path], key: SecretKey
) -> None:
    data = tmp_path / "page.html"
    data.write_bytes(DATA + b"x")
    (tmp_path / "page.html.minisig").write_bytes(minisign.sign(key, DATA, COMMENT))
    result = run("-Vm", str(data), "-p", str(pair[1]))
    assert result.returncode != 0
    assert "Signature verification failed" in result.stderr


def test_real_minisign_refuses_tampered_trusted_comment(
    tmp_path: Path, pair: tuple[Path, Path], key: SecretKey
) -> None:
    data = tmp_path / "page.html"
    data.write_bytes(DATA)
    parts = lines(minisign.sign(key, DATA, "version:5"))
    parts[2] = "trusted comment: version:6"
    (tmp_path / "page.html.minisig").write_bytes(join(parts))
    result = run("-Vm", str(data), "-p", str(pair[1]))
    assert result.returncode != 0
    assert "Comment signature verification failed" in result.stderr


def test_we_verify_the_real_binarys_signature_and_load_its_keys(tmp_path: Path) -> None:
    pub, sec, data = tmp_path / "bin.pub", tmp_path / "bin.key", tmp_path / "f.txt"
    assert run("-G", "-W", "-p", str(pub), "-s", str(sec)).returncode == 0
    data.write_bytes(DATA)
    result = run("-S", "-s", str(sec), "-m", str(data), "-t", "made by minisign")
    assert result.returncode == 0, result.stderr
    public = load_public_key(pub)
    signature = (tmp_path / "f.txt.minisig").read_bytes()
    assert verify(public, DATA, signature) == "made by minisign"
    secret = load_secret_key(sec, None)
    assert secret.public == public
    assert verify(public, DATA, minisign.sign(secret, DATA, "ours")) == "ours"


def test_real_binary_signs_with_our_unencrypted_key(
    tmp_path: Path, pair: tuple[Path, Path], key: SecretKey
) -> None:
    data = tmp_path / "f.txt"
    data.write_bytes(DATA)
    result = run("-S", "-s", str(pair[0]), "-m", str(data), "-t", "binary, our key")
    assert result.returncode == 0, result.stderr
    assert verify(key.public, DATA, (tmp_path / "f.txt.minisig").read_bytes()) == "binary, our key"


def test_real_binary_signs_with_our_encrypted_key(tmp_path: Path, key: SecretKey) -> None:
    secret, public, data = tmp_path / "k.key", tmp_path / "k.pub", tmp_path / "f.txt"
    write_key_pair(key, secret, public, "pässwörd 1", **FAST_KDF)
    data.write_bytes(DATA)
    wrong = run("-S", "-s", str(secret), "-m", str(data), stdin="nope\n")
    assert wrong.returncode != 0
    assert "Wrong password" in wrong.stderr
    result = run("-S", "-s", str(secret), "-m", str(data), "-t", "encrypted", stdin="pässwörd 1\n")
    assert result.returncode == 0, result.stderr
    assert verify(key.public, DATA, (tmp_path / "f.txt.minisig").read_bytes()) == "encrypted"
    assert run("-Vm", str(data), "-p", str(public)).returncode == 0


@pytest.mark.slow
def test_default_scrypt_parameters_interoperate_both_ways(tmp_path: Path, key: SecretKey) -> None:
    """minisign's own defaults (1 GiB scrypt): our file read by it, its file read by us."""
    ours, data = tmp_path / "ours.key", tmp_path / "f.txt"
    write_key_pair(key, ours, tmp_path / "ours.pub", "pw-ours")
    data.write_bytes(DATA)
    result = run("-S", "-s", str(ours), "-m", str(data), stdin="pw-ours\n")
    assert result.returncode == 0, result.stderr
    theirs, their_pub = tmp_path / "theirs.key", tmp_path / "theirs.pub"
    result = run("-G", "-p", str(their_pub), "-s", str(theirs), stdin="pw-theirs\npw-theirs\n")
    assert result.returncode == 0, result.stderr
    raw = base64.b64decode(theirs.read_text().splitlines()[1])
    assert raw[2:4] == b"Sc"
    assert int.from_bytes(raw[38:46], "little") == minisign.KDF_OPSLIMIT
    assert load_secret_key(theirs, "pw-theirs").public == load_public_key(their_pub)


def test_scrypt_parameters_match_libsodium() -> None:
    assert minisign.scrypt_parameters(minisign.KDF_OPSLIMIT, minisign.KDF_MEMLIMIT) == (
        1 << 20,
        8,
        1,
    )
    assert minisign.scrypt_parameters(524_288, 16_777_216) == (1 << 14, 8, 1)
    assert minisign.scrypt_parameters(32_768, 1 << 30) == (1 << 10, 8, 1)


# --- bad signatures ------------------------------------------------------------------


def test_tampered_data_fails(key: SecretKey) -> None:
    with pytest.raises(SignatureError, match="does not match the data"):
        verify(key.public, DATA + b" ", minisign.sign(key, DATA, COMMENT))


def test_tampered_trusted_comment_fails_the_global_signature(key: SecretKey) -> None:
    parts = lines(minisign.sign(key, DATA, "version:5 expires:2026-11-27"))
    parts[2] = "trusted comment: version:5 expires:2099-11-27"
    with pytest.raises(SignatureError, match="trusted comment"):
        verify(key.public, DATA, join(parts))


def test_wrong_key_names_both_key_ids(key: SecretKey) -> None:
    other = generate_key()
    with pytest.raises(SignatureError) as caught:
        verify(other.public, DATA, minisign.sign(key, DATA, COMMENT))
    assert key.public.key_id_hex in str(caught.value)
    assert other.public.key_id_hex in str(caught.value)


def test_same_key_id_but_other_key_fails(key: SecretKey) -> None:
    impostor = PublicKey(key_id=key.key_id, key=generate_key().public.key)
    with pytest.raises(SignatureError, match="does not match"):
        verify(impostor, DATA, minisign.sign(key, DATA, COMMENT))


@pytest.mark.parametrize("keep", [0, 1, 2, 3])
def test_truncated_signature_by_lines(key: SecretKey, keep: int) -> None:
    parts = lines(minisign.sign(key, DATA, COMMENT))[:keep]
    with pytest.raises(SignatureError):
        verify(key.public, DATA, join(parts) if parts else b"")


@pytest.mark.parametrize("cut", [2, 10, 60, 120, 200, 250])  # 1: only the final newline
def test_truncated_signature_by_bytes(key: SecretKey, cut: int) -> None:
    signature = minisign.sign(key, DATA, COMMENT)
    with pytest.raises(SignatureError):
        verify(key.public, DATA, signature[: len(signature) - cut])


@pytest.mark.parametrize(
    "garble",
    [
        lambda p: [p[0], p[1][:-4] + "!!!=", *p[2:]],  # bad base64
        lambda p: [p[0], p[1] + "AAAA", *p[2:]],  # too long
        lambda p: [p[0], p[1], p[2], p[3][:-2]],  # short global signature
        lambda p: [p[0], p[1], p[2], "%" * 88],  # bad base64 in the global signature
        lambda p: ["hello", *p[1:]],  # no untrusted comment
        lambda p: [p[0], p[1], "comment: x", p[3]],  # no trusted comment prefix
        lambda p: [*p, "extra"],  # trailing text
        lambda p: [p[0], p[1], p[2] + "\rx", p[3]],  # stray CR
        lambda p: [p[0], p[1], p[2] + "\x00x", p[3]],  # NUL would cut the comment in C
        lambda p: ["untrusted comment: " + "x" * 2_000, *p[1:]],
    ],
)
def test_garbled_signatures_are_named_errors(key: SecretKey, garble: object) -> None:
    parts = lines(minisign.sign(key, DATA, COMMENT))
    assert callable(garble)
    with pytest.raises(SignatureError):
        verify(key.public, DATA, join(garble(parts)))


def test_wrong_algorithm_bytes(key: SecretKey) -> None:
    parts = lines(minisign.sign(key, DATA, COMMENT))
    raw = base64.b64decode(parts[1])
    for algorithm, message in ((b"Ed", "legacy"), (b"XX", "unsupported signature algorithm")):
        parts[1] = base64.b64encode(algorithm + raw[2:]).decode()
        with pytest.raises(SignatureError, match=message):
            verify(key.public, DATA, join(parts))


def test_huge_and_binary_signature_files(key: SecretKey) -> None:
    with pytest.raises(SignatureError, match="larger than"):
        parse_signature(b"untrusted comment: x\n" + b"A" * 10_000_000)
    with pytest.raises(SignatureError, match="not UTF-8"):
        parse_signature(b"\xff\xfe" * 100)
    with pytest.raises(SignatureError, match="truncated"):
        parse_signature(b"")


def test_crlf_signature_is_accepted(key: SecretKey) -> None:
    signature = minisign.sign(key, DATA, COMMENT).replace(b"\n", b"\r\n")
    assert verify(key.public, DATA, signature) == COMMENT


def test_bad_trusted_comments_are_refused_when_signing(key: SecretKey) -> None:
    for comment in (
        "two\nlines",
        "cr\rhere",
        "nul\x00",
        "x" * (minisign.MAX_TRUSTED_COMMENT_BYTES + 1),
    ):
        with pytest.raises(SigningError):
            minisign.sign(key, DATA, comment)
    with pytest.raises(SigningError, match="64 bytes"):
        sign_digest(key, b"short", COMMENT)


# --- bad key files -------------------------------------------------------------------


def test_secret_key_readable_by_others_is_refused(pair: tuple[Path, Path]) -> None:
    secret = pair[0]
    for mode in (0o644, 0o640, 0o604):
        secret.chmod(mode)
        with pytest.raises(KeyFileError) as caught:
            load_secret_key(secret, None)
        assert str(secret) in str(caught.value)
        assert f"chmod 600 {secret}" in str(caught.value)


def test_write_refuses_to_overwrite(pair: tuple[Path, Path], key: SecretKey) -> None:
    secret, public = pair
    before = secret.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_pair(generate_key(), secret, public.with_name("new.pub"), None)
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_pair(generate_key(), secret.with_name("new.key"), public, None)
    assert secret.read_bytes() == before
    assert not secret.with_name("new.key").exists()
    assert not public.with_name("new.pub").exists()


def test_missing_and_odd_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no such secret key file"):
        load_secret_key(tmp_path / "absent.key", None)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_secret_key(tmp_path, None)
    big = tmp_path / "big.pub"
    big.write_bytes(b"x" * 100_000)
    with pytest.raises(KeyFileError, match="larger than"):
        load_public_key(big)


def test_wrong_or_missing_passphrase(key: SecretKey) -> None:
    encrypted = secret_key_bytes(key, "right", **FAST_KDF)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        parse_secret_key(encrypted, "wrong")
    with pytest.raises(KeyFileError, match="passphrase is needed"):
        parse_secret_key(encrypted, None)
    for bad in ("", "two\nlines", "cr\r", "x" * 1_024):
        with pytest.raises(KeyFileError, match="passphrase"):
            secret_key_bytes(key, bad)


def test_garbled_secret_keys(key: SecretKey) -> None:
    good = secret_key_bytes(key, None)
    comment, body = good.decode().splitlines()
    raw = bytearray(base64.b64decode(body))

    def with_raw(change: bytes, at: int) -> bytes:
        changed = bytearray(raw)
        changed[at : at + len(change)] = change
        return f"{comment}\n{base64.b64encode(changed).decode()}\n".encode()

    cases = {
        "algorithm": with_raw(b"XX", 0),
        "key derivation": with_raw(b"Ar", 2),
        "checksum": with_raw(b"S2", 4),
        "corrupted": with_raw(bytes([raw[100] ^ 0xFF]), 100),  # a seed byte, bits flipped
        "garbled": f"{comment}\n{body[:-8]}\n".encode(),
        "base64": f"{comment}\n{body[:-4]}!!!!\n".encode(),
        "untrusted comment": body.encode(),
        "ASCII": b"\xff" * 300,
        "larger than": b"x" * 10_000,
    }
    for message, data in cases.items():
        with pytest.raises(KeyFileError, match=message):
            parse_secret_key(data, None)


def test_secret_key_with_absurd_scrypt_cost_is_refused(key: SecretKey) -> None:
    encrypted = secret_key_bytes(key, "pw", **FAST_KDF)
    comment, body = encrypted.decode().splitlines()
    raw = bytearray(base64.b64decode(body))
    raw[46:54] = (1 << 40).to_bytes(8, "little")  # memlimit 1 TiB
    raw[38:46] = (1 << 40).to_bytes(8, "little")
    data = f"{comment}\n{base64.b64encode(raw).decode()}\n".encode()
    with pytest.raises(KeyFileError, match="beyond this tool's limits"):
        parse_secret_key(data, "pw")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "RWQ",
        "untrusted comment: x\n",
        "untrusted comment: x\nRW" + "!" * 54,
        "a\nb\nc",
        "RW" + "A" * 200,
    ],
)
def test_garbled_public_keys(text: str) -> None:
    with pytest.raises(KeyFileError):
        parse_public_key(text)


def test_public_key_of_another_algorithm(key: SecretKey) -> None:
    raw = base64.b64decode(key.public.line())
    with pytest.raises(KeyFileError, match="algorithm"):
        parse_public_key(base64.b64encode(b"XY" + raw[2:]).decode())


def test_real_minisign_accepts_our_public_key_file(tmp_path: Path, key: SecretKey) -> None:
    pub = tmp_path / "k.pub"
    pub.write_text(key.public.file_text())
    data = tmp_path / "d"
    data.write_bytes(b"")
    (tmp_path / "d.minisig").write_bytes(minisign.sign(key, b"", "empty file"))
    result = run("-Vm", str(data), "-p", str(pub), "-Q")
    assert (result.returncode, result.stdout) == (0, "empty file\n")


def test_invalid_key_objects_are_refused() -> None:
    with pytest.raises(SigningError):
        PublicKey(key_id=b"short", key=bytes(32))
    with pytest.raises(SigningError):
        SecretKey(key_id=bytes(8), seed=bytes(31), public=PublicKey(bytes(8), bytes(32)))
