"""Ed25519 keys and signatures in minisign's formats, so readers and auditors can
check the edition with the stock `minisign` tool.

Signatures are always prehashed ("ED": Ed25519 over BLAKE2b-512 of the file), carry a
trusted comment, and a global signature over signature + trusted comment.

Formats (as minisign 0.10+ writes and reads them; base64 is the standard alphabet):

    public key   "untrusted comment: minisign public key <KEYID>" then
                 base64("Ed" + key_id[8] + ed25519_public[32])            (56 chars, "RW...")
    secret key   "untrusted comment: ..." then base64 of 158 bytes:
                 "Ed" + kdf ("Sc" scrypt, or 0x0000 unencrypted) + "B2"
                 + salt[32] + opslimit[8, LE] + memlimit[8, LE]
                 + (key_id[8] + seed[32] + public[32] + checksum[32]) XOR scrypt stream,
                 checksum = BLAKE2b-256("Ed" + key_id + seed + public)
    signature    "untrusted comment: ..."
                 base64("ED" + key_id[8] + ed25519(BLAKE2b-512(data))[64])
                 "trusted comment: <comment>"
                 base64(ed25519(signature[64] + comment)[64])

The key id is 8 bytes stored as they are; minisign prints them as a little-endian
64-bit number in upper-case hex, so `key_id_hex` reverses them.

API CONTRACT (other modules code against it):
    PublicKey, SecretKey, Signature
    parse_public_key, load_public_key, generate_key
    secret_key_bytes, parse_secret_key, load_secret_key, write_key_pair
    digest, new_hasher, sign, sign_digest, parse_signature, verify, verify_digest
Errors: SigningError / KeyFileError for our own keys, SignatureError for what we check.
No message, repr or str ever contains secret key material or a passphrase.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mirror.errors import KeyFileError, SignatureError, SigningError

SIG_ALG = b"Ed"  # key algorithm, and legacy (not prehashed) signatures
SIG_ALG_HASHED = b"ED"  # prehashed signatures: the only kind we make or accept
KDF_SCRYPT = b"Sc"
KDF_NONE = b"\x00\x00"
CHK_ALG = b"B2"
COMMENT_PREFIX = "untrusted comment: "
TRUSTED_COMMENT_PREFIX = "trusted comment: "
SIGNATURE_COMMENT = "signature from minisign secret key"

KEY_ID_BYTES = 8
PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
SIGNATURE_BYTES = 64
DIGEST_BYTES = 64  # BLAKE2b-512
CHECKSUM_BYTES = 32  # BLAKE2b-256
SALT_BYTES = 32
PUBLIC_KEY_B64_CHARS = 56  # 42 bytes
SECRET_KEY_B64_CHARS = 212  # 158 bytes
SIG_LINE_B64_CHARS = 100  # 74 bytes
GLOBAL_SIG_B64_CHARS = 88  # 64 bytes

KDF_OPSLIMIT = 33_554_432  # minisign's default (libsodium's scrypt "sensitive")
KDF_MEMLIMIT = 1_073_741_824  # bytes; minisign's default: scrypt N=2^20, r=8, p=1
MAX_SCRYPT_MEMORY = 1 << 30  # bytes (128·r·N) a key file may ask for
MAX_SCRYPT_P = 16
MAX_PASSPHRASE_BYTES = 1023  # minisign reads at most this much
MAX_KEY_FILE_BYTES = 4_096
MAX_SIGNATURE_FILE_BYTES = 16_384
MAX_COMMENT_BYTES = 1_000  # untrusted comment line, as minisign reads it (1024 with prefix)
MAX_TRUSTED_COMMENT_BYTES = 8_000  # minisign refuses 8174 or more


def key_id_hex(key_id: bytes) -> str:
    """A key id as minisign prints it: 16 upper-case hex digits, little-endian."""
    return key_id[::-1].hex().upper()


@dataclass(frozen=True)
class PublicKey:
    key_id: bytes  # 8 bytes, as in minisign's files
    key: bytes  # 32 bytes, Ed25519

    def __post_init__(self) -> None:
        if len(self.key_id) != KEY_ID_BYTES or len(self.key) != PUBLIC_KEY_BYTES:
            raise SigningError("a public key is an 8-byte id and 32 bytes of Ed25519 key")

    @property
    def key_id_hex(self) -> str:
        """The key id as minisign prints it (16 upper-case hex digits)."""
        return key_id_hex(self.key_id)

    def line(self) -> str:
        """The one-line public key, "RW...", that readers compare."""
        return _b64(SIG_ALG + self.key_id + self.key)

    def file_text(self) -> str:
        """A minisign public key file: untrusted comment line + the "RW..." line."""
        return f"{COMMENT_PREFIX}minisign public key {self.key_id_hex}\n{self.line()}\n"


@dataclass(frozen=True)
class SecretKey:
    key_id: bytes
    seed: bytes = field(repr=False)  # 32 bytes; never printed
    public: PublicKey = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_BYTES or self.public.key_id != self.key_id:
            raise SigningError("a secret key is a 32-byte seed with the public key of its id")


@dataclass(frozen=True)
class Signature:
    """A parsed .minisig file."""

    key_id: bytes
    signature: bytes  # 64 bytes over BLAKE2b-512 of the data
    trusted_comment: str
    global_signature: bytes  # 64 bytes over signature + trusted comment

    @property
    def key_id_hex(self) -> str:
        """The signing key's id as minisign prints it."""
        return key_id_hex(self.key_id)


# --- public keys -------------------------------------------------------------------


def parse_public_key(text: str) -> PublicKey:
    """A public key from a minisign .pub file's text or a bare "RW..." line (KeyFileError)."""
    if len(text) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"not a minisign public key: longer than {MAX_KEY_FILE_BYTES} bytes")
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) == 2 and lines[0].startswith(COMMENT_PREFIX.strip()):
        lines = lines[1:]
    if len(lines) != 1:
        raise KeyFileError(
            "not a minisign public key: expected an 'untrusted comment: ...' line "
            "and an 'RW...' line, or the 'RW...' line alone"
        )
    raw = _b64decode(lines[0], PUBLIC_KEY_B64_CHARS, KeyFileError, "public key")
    if raw[:2] != SIG_ALG:
        raise KeyFileError(f"unsupported public key algorithm {raw[:2]!r} (expected 'Ed')")
    return PublicKey(key_id=raw[2:10], key=raw[10:])


def load_public_key(path: Path, *, missing: str = "") -> PublicKey:
    """Read a minisign public key file (KeyFileError naming the file; `missing`: what to do
    when there is no such file)."""
    data = _read_bounded(path, "public key", missing=missing)
    try:
        return parse_public_key(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: not a minisign public key (not UTF-8 text)") from None
    except KeyFileError as exc:
        raise KeyFileError(f"{path}: {exc}") from None


def read_public_key(text_or_path: str) -> PublicKey:
    """A public key given as its "RW..." line or as a minisign .pub file (KeyFileError)."""
    if text_or_path.startswith("RW"):
        return parse_public_key(text_or_path)
    return load_public_key(Path(text_or_path), missing=PUBLIC_KEY_MISSING)


# A --key that names no file: what `verify` and `sign` users are told.
PUBLIC_KEY_MISSING = "give the publication's public key: its .pub file or its RW... line"


# --- secret keys -------------------------------------------------------------------


def generate_key() -> SecretKey:
    """A new Ed25519 key pair with a random 8-byte key id."""
    private = Ed25519PrivateKey.generate()
    key_id = os.urandom(KEY_ID_BYTES)
    public = PublicKey(key_id=key_id, key=private.public_key().public_bytes_raw())
    return SecretKey(key_id=key_id, seed=private.private_bytes_raw(), public=public)


def secret_key_bytes(
    key: SecretKey,
    passphrase: str | None,
    *,
    kdf_opslimit: int = KDF_OPSLIMIT,
    kdf_memlimit: int = KDF_MEMLIMIT,  # bytes
) -> bytes:
    """A minisign secret key file; scrypt-encrypted when a passphrase is given."""
    keynum_sk = key.key_id + key.seed + key.public.key
    keynum_sk += _checksum(keynum_sk)
    if passphrase is None:
        header = SIG_ALG + KDF_NONE + CHK_ALG + bytes(SALT_BYTES + 16)
        comment = "minisign secret key (unencrypted)"
    else:
        salt = os.urandom(SALT_BYTES)
        limits = kdf_opslimit.to_bytes(8, "little") + kdf_memlimit.to_bytes(8, "little")
        header = SIG_ALG + KDF_SCRYPT + CHK_ALG + salt + limits
        stream = _scrypt(_passphrase_bytes(passphrase), salt, kdf_opslimit, kdf_memlimit)
        keynum_sk = _xor(keynum_sk, stream)
        comment = "minisign encrypted secret key"
    return f"{COMMENT_PREFIX}{comment}\n{_b64(header + keynum_sk)}\n".encode("ascii")


def parse_secret_key(data: bytes, passphrase: str | None) -> SecretKey:
    """A secret key from a minisign secret key file's bytes (KeyFileError).

    An encrypted key needs its passphrase; an unencrypted one ignores it.
    """
    raw = _secret_key_raw(data)
    kdf, salt, keynum_sk = raw[2:4], raw[6:38], raw[54:]
    if kdf == KDF_SCRYPT:
        if passphrase is None:
            raise KeyFileError("the secret key is encrypted: a passphrase is needed")
        opslimit = int.from_bytes(raw[38:46], "little")
        memlimit = int.from_bytes(raw[46:54], "little")
        keynum_sk = _xor(
            keynum_sk, _scrypt(_passphrase_bytes(passphrase), salt, opslimit, memlimit)
        )
    checksum = keynum_sk[-CHECKSUM_BYTES:]
    if not hmac.compare_digest(checksum, _checksum(keynum_sk[:-CHECKSUM_BYTES])):
        if kdf == KDF_SCRYPT:
            raise KeyFileError("wrong passphrase for this secret key (checksum mismatch)")
        if checksum != bytes(CHECKSUM_BYTES):  # minisign -W leaves it all zero
            raise KeyFileError("the secret key file is corrupted (checksum mismatch)")
    return _secret_key_from(keynum_sk[:KEY_ID_BYTES], keynum_sk[8:40], keynum_sk[40:72])


def load_secret_key(path: Path, passphrase: str | None, *, missing: str = "") -> SecretKey:
    """Read a secret key file, refusing one readable by group or others (KeyFileError;
    `missing`: what to do when there is no such file)."""
    try:
        data = _read_bounded(path, "secret key", private=True, missing=missing)
        return parse_secret_key(data, passphrase)
    except KeyFileError as exc:
        if str(exc).startswith(f"{path}: "):
            raise
        raise KeyFileError(f"{path}: {exc}") from None


def write_key_pair(
    key: SecretKey,
    secret_path: Path,
    public_path: Path,
    passphrase: str | None,
    *,
    kdf_opslimit: int = KDF_OPSLIMIT,
    kdf_memlimit: int = KDF_MEMLIMIT,  # bytes
) -> None:
    """Write both files (secret 0600), refusing to overwrite either (KeyFileError)."""
    for path in (secret_path, public_path):
        if path.exists() or path.is_symlink():
            raise KeyFileError(f"{path}: already exists; refusing to overwrite a key file")
    secret = secret_key_bytes(key, passphrase, kdf_opslimit=kdf_opslimit, kdf_memlimit=kdf_memlimit)
    _write_new(secret_path, secret, 0o600)
    try:
        _write_new(public_path, key.public.file_text().encode("ascii"), 0o644)
    except KeyFileError:
        secret_path.unlink()
        raise


def _secret_key_raw(data: bytes) -> bytes:
    """The 158 decoded bytes of a secret key file, with algorithms checked."""
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"not a minisign secret key: larger than {MAX_KEY_FILE_BYTES} bytes")
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise KeyFileError("not a minisign secret key (not ASCII text)") from None
    if len(lines) < 2 or not lines[0].startswith(COMMENT_PREFIX.strip()):
        raise KeyFileError(
            "not a minisign secret key: expected an 'untrusted comment: ...' line and a base64 line"
        )
    raw = _b64decode(lines[1].strip(), SECRET_KEY_B64_CHARS, KeyFileError, "secret key")
    if raw[:2] != SIG_ALG:
        raise KeyFileError(f"unsupported secret key algorithm {raw[:2]!r} (expected 'Ed')")
    if raw[4:6] != CHK_ALG:
        raise KeyFileError(f"unsupported secret key checksum {raw[4:6]!r} (expected 'B2')")
    if raw[2:4] not in (KDF_SCRYPT, KDF_NONE):
        raise KeyFileError(f"unsupported key derivation {raw[2:4]!r} (expected 'Sc' or none)")
    return raw


def _secret_key_from(key_id: bytes, seed: bytes, public: bytes) -> SecretKey:
    derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    if not hmac.compare_digest(derived, public):
        raise KeyFileError("the secret key file is corrupted (its two halves do not match)")
    return SecretKey(key_id=key_id, seed=seed, public=PublicKey(key_id=key_id, key=public))


def _checksum(keynum: bytes) -> bytes:
    return hashlib.blake2b(SIG_ALG + keynum, digest_size=CHECKSUM_BYTES).digest()


def _passphrase_bytes(passphrase: str) -> bytes:
    encoded = passphrase.encode("utf-8")
    if not encoded or len(encoded) > MAX_PASSPHRASE_BYTES or set("\r\n\x00") & set(passphrase):
        raise KeyFileError(
            f"a passphrase must be 1 to {MAX_PASSPHRASE_BYTES} bytes on one line "
            "(no passphrase: an unencrypted key)"
        )
    return encoded


def scrypt_parameters(opslimit: int, memlimit: int) -> tuple[int, int, int]:
    """libsodium's scryptsalsa208sha256 (N, r, p) for minisign's opslimit and memlimit."""
    opslimit = max(opslimit, 32_768)
    r = 8
    if opslimit < memlimit // 32:
        p, max_n = 1, opslimit // (r * 4)
        n_log2 = _smallest_log2_above(max_n // 2)
    else:
        max_n = memlimit // (r * 128)
        n_log2 = _smallest_log2_above(max_n // 2)
        p = min((opslimit // 4) // (1 << n_log2), 0x3FFFFFFF) // r
    return 1 << n_log2, r, p


def _smallest_log2_above(limit: int) -> int:
    n_log2 = 1
    while n_log2 < 63 and (1 << n_log2) <= limit:
        n_log2 += 1
    return n_log2


def _scrypt(password: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    n, r, p = scrypt_parameters(opslimit, memlimit)
    if 128 * r * n > MAX_SCRYPT_MEMORY or not 1 <= p <= MAX_SCRYPT_P:
        raise KeyFileError(
            f"the secret key asks for scrypt N={n} r={r} p={p}: beyond this tool's limits"
        )
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    try:
        return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=104)
    except (ValueError, MemoryError) as exc:
        raise KeyFileError(f"scrypt key derivation failed: {type(exc).__name__}") from None


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


# --- signatures --------------------------------------------------------------------


def digest(data: bytes) -> bytes:
    """The BLAKE2b-512 digest minisign signs for a prehashed ("ED") signature."""
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


def new_hasher() -> hashlib.blake2b:
    """A BLAKE2b-512 hasher for streamed files; pass its `.digest()` to *_digest."""
    return hashlib.blake2b(digest_size=DIGEST_BYTES)


def sign(key: SecretKey, data: bytes, trusted_comment: str) -> bytes:
    """The .minisig file content for `data` (prehashed)."""
    return sign_digest(key, digest(data), trusted_comment)


def sign_digest(key: SecretKey, digest: bytes, trusted_comment: str) -> bytes:
    """As `sign`, given the BLAKE2b-512 digest of the data (for streamed files)."""
    _check_digest(digest)
    comment = _trusted_comment_bytes(trusted_comment)
    private = Ed25519PrivateKey.from_private_bytes(key.seed)
    signature = private.sign(digest)
    global_signature = private.sign(signature + comment)
    return (
        f"{COMMENT_PREFIX}{SIGNATURE_COMMENT}\n"
        f"{_b64(SIG_ALG_HASHED + key.key_id + signature)}\n"
        f"{TRUSTED_COMMENT_PREFIX}{trusted_comment}\n"
        f"{_b64(global_signature)}\n"
    ).encode()


def parse_signature(data: bytes) -> Signature:
    """Parse a .minisig file, bounded in size (SignatureError when garbled or truncated)."""
    lines = _signature_lines(data)
    raw = _b64decode(lines[1], SIG_LINE_B64_CHARS, SignatureError, "signature")
    if raw[:2] == SIG_ALG:
        raise SignatureError("legacy (not prehashed) minisign signature: not accepted")
    if raw[:2] != SIG_ALG_HASHED:
        raise SignatureError(f"unsupported signature algorithm {raw[:2]!r} (expected 'ED')")
    if not lines[2].startswith(TRUSTED_COMMENT_PREFIX):
        raise SignatureError(
            f"garbled signature: line 3 must start with {TRUSTED_COMMENT_PREFIX!r}"
        )
    trusted_comment = lines[2][len(TRUSTED_COMMENT_PREFIX) :]
    if len(trusted_comment.encode("utf-8")) > MAX_TRUSTED_COMMENT_BYTES:
        raise SignatureError(f"trusted comment longer than {MAX_TRUSTED_COMMENT_BYTES} bytes")
    global_signature = _b64decode(
        lines[3], GLOBAL_SIG_B64_CHARS, SignatureError, "global signature"
    )
    return Signature(
        key_id=raw[2:10],
        signature=raw[10:],
        trusted_comment=trusted_comment,
        global_signature=global_signature,
    )


def verify(key: PublicKey, data: bytes, signature: bytes) -> str:
    """Check a .minisig against data; returns the trusted comment (SignatureError)."""
    return verify_digest(key, digest(data), signature)


def verify_digest(key: PublicKey, digest: bytes, signature: bytes) -> str:
    """As `verify`, given the BLAKE2b-512 digest of the data."""
    _check_digest(digest)
    parsed = parse_signature(signature)
    if parsed.key_id != key.key_id:
        raise SignatureError(
            f"signed by key {parsed.key_id_hex}, not by the expected key {key.key_id_hex}"
        )
    public = Ed25519PublicKey.from_public_bytes(key.key)
    try:
        public.verify(parsed.signature, digest)
    except InvalidSignature:
        raise SignatureError("signature does not match the data") from None
    try:
        public.verify(parsed.global_signature, parsed.signature + parsed.trusted_comment.encode())
    except InvalidSignature:
        raise SignatureError("trusted comment does not match its signature (tampered)") from None
    return parsed.trusted_comment


def _signature_lines(data: bytes) -> list[str]:
    """The four lines of a .minisig file, each checked for size and stray characters."""
    if len(data) > MAX_SIGNATURE_FILE_BYTES:
        raise SignatureError(f"signature file larger than {MAX_SIGNATURE_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("garbled signature: not UTF-8 text") from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if len(lines) < 4 or (len(lines) == 4 and not lines[3]):
        raise SignatureError("truncated signature: expected 4 lines")
    if any(lines[4:]):
        raise SignatureError("garbled signature: unexpected text after the 4th line")
    if any("\r" in line or "\x00" in line for line in lines[:4]):
        raise SignatureError("garbled signature: stray carriage return or NUL")
    if not lines[0].startswith(COMMENT_PREFIX) or len(lines[0]) > MAX_COMMENT_BYTES:
        raise SignatureError(f"garbled signature: line 1 must be {COMMENT_PREFIX!r}...")
    return lines[:4]


def _trusted_comment_bytes(trusted_comment: str) -> bytes:
    encoded = trusted_comment.encode("utf-8")
    if any(c in trusted_comment for c in "\r\n\x00"):
        raise SigningError("a trusted comment is one line: no CR, LF or NUL")
    if len(encoded) > MAX_TRUSTED_COMMENT_BYTES:
        raise SigningError(f"trusted comment longer than {MAX_TRUSTED_COMMENT_BYTES} bytes")
    return encoded


def _check_digest(value: bytes) -> None:
    if len(value) != DIGEST_BYTES:
        raise SigningError(f"a digest is {DIGEST_BYTES} bytes of BLAKE2b-512, not {len(value)}")


# --- encoding and files --------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(
    text: str, chars: int, error: type[KeyFileError] | type[SignatureError], what: str
) -> bytes:
    """Strict base64 of an exact length; garbled input is `error`, never a traceback."""
    if len(text) != chars:
        raise error(f"garbled {what}: {len(text)} base64 characters, expected {chars}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise error(f"garbled {what}: not valid base64") from None


def _read_bounded(path: Path, what: str, *, private: bool = False, missing: str = "") -> bytes:
    """A key file's bytes, at most MAX_KEY_FILE_BYTES; a private one must be 0600 or less.
    `missing`: what to do when there is no such file (said in the message)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # a FIFO must not hang
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        hint = f" ({missing})" if missing else ""
        raise KeyFileError(f"{path}: no such {what} file{hint}") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot open the {what} file: {exc.strerror}") from None
    try:
        _check_file_mode(path, what, os.fstat(fd).st_mode, private)
        data = os.read(fd, MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the {what} file: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path}: larger than {MAX_KEY_FILE_BYTES} bytes: not a {what} file")
    return data


def _check_file_mode(path: Path, what: str, mode: int, private: bool) -> None:
    if not stat.S_ISREG(mode):
        raise KeyFileError(f"{path}: the {what} file is not a regular file")
    if private and mode & 0o077:
        raise KeyFileError(
            f"{path}: the {what} file is open to group or others "
            f"(mode {stat.S_IMODE(mode):04o}); fix it with: chmod 600 {path}"
        )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (never overwrite) with `mode`, write `data` and fsync it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create: {exc.strerror}") from None
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise KeyFileError(f"{path}: cannot write: {exc.strerror}") from None
    os.close(fd)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
