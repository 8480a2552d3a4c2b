"""Process hardening on Linux: a parent that other processes cannot inspect, and parser
workers confined by Landlock to reading the Python installation.

The parent calls `make_non_dumpable()` first thing: then processes of the same user can
neither read its `/proc/<pid>/environ` or `/proc/<pid>/mem` nor attach a debugger. A
worker calls `confine_worker(read_only)` before touching hostile input: afterwards it can
read files only beneath `read_only` (the standard library, the site-packages, mirror's own
package, the system's shared libraries), write nowhere, open no TCP connection, reach no
abstract Unix socket, signal no process outside itself, and (when running as root) holds
no capabilities. Landlock restricts root as well, and a confined process cannot ptrace
or read the `/proc` files of one outside its domain, so a parser exploit finds neither
the parent's environment nor the signing key, whatever the uid.

Elsewhere (another OS, a kernel before 5.13 or with Landlock disabled) both are no-ops
that say so: `make_non_dumpable` returns False, `confine_worker` returns 0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import site
import stat
import sys
import sysconfig
import threading
from collections.abc import Iterable
from pathlib import Path

from mirror.errors import SandboxError

PR_SET_DUMPABLE, PR_GET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 3, 38
# Landlock's syscall numbers are the same on every architecture's unified table.
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
SYS_CAPSET = {"x86_64": 126, "aarch64": 91, "riscv64": 91, "ppc64le": 184, "s390x": 185}
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
ACCESS_FS_EXECUTE, ACCESS_FS_READ_FILE, ACCESS_FS_READ_DIR = 1 << 0, 1 << 2, 1 << 3
ACCESS_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
ACCESS_NET_TCP = 0b11  # bind and connect (ABI 4)
SCOPE_ABSTRACT_UNIX_SOCKET_AND_SIGNAL = 0b11  # (ABI 6)
CAPABILITY_VERSION_3 = 0x20080522
SYSTEM_LIBRARIES = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")
SYSTEM_FILES = ("/etc/ld.so.cache", "/dev/null", "/dev/urandom")  # read-only, files only


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def make_non_dumpable() -> bool:
    """Forbid other processes of this user to read our memory, environ or attach; False
    where the OS has no such switch."""
    libc = _libc()
    if libc is None:
        return False
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise SandboxError(f"prctl(PR_SET_DUMPABLE, 0) failed: {os.strerror(ctypes.get_errno())}")
    return True


def is_dumpable() -> bool:
    libc = _libc()
    return libc is None or libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (or it is disabled)."""
    libc = _libc()
    if libc is None:
        return 0
    version = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return max(0, int(version))


def worker_read_roots() -> tuple[str, ...]:
    """What a parser worker may read: the standard library, the site-packages, mirror
    itself, shared libraries; not the whole prefix (`/usr` may hold `/usr/local/etc`)."""
    import mirror

    paths = sysconfig.get_paths()
    roots = {paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        roots.add(site.getusersitepackages())
    roots.add(str(Path(mirror.__file__).parent))
    roots.update(SYSTEM_LIBRARIES + SYSTEM_FILES)
    return tuple(sorted(root for root in roots if root and Path(root).exists()))


def confine_worker(read_only: Iterable[str]) -> int:
    """Confine this process for good (see the module docstring); the Landlock ABI used, or
    0 where Landlock is unavailable. Call it while the process has one thread only."""
    abi = landlock_abi()
    if abi == 0:
        return 0
    if threading.active_count() != 1:
        raise SandboxError("confine_worker must run before any other thread starts")
    libc = _libc()
    assert libc is not None
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    ruleset = _create_ruleset(libc, abi)
    try:
        for root in read_only:
            _allow_reading(libc, ruleset, root, abi)
        _check(libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    _drop_capabilities(libc)
    return abi


def _handled_fs(abi: int) -> int:
    return max(mask for since, mask in ACCESS_FS_BY_ABI.items() if since <= abi)


def _create_ruleset(libc: ctypes.CDLL, abi: int) -> int:
    attr = _RulesetAttr(
        handled_access_fs=_handled_fs(abi),
        handled_access_net=ACCESS_NET_TCP if abi >= 4 else 0,
        scoped=SCOPE_ABSTRACT_UNIX_SOCKET_AND_SIGNAL if abi >= 6 else 0,
    )
    # an older kernel takes the whole struct as long as the fields it lacks are zero
    size = ctypes.c_size_t(ctypes.sizeof(attr))
    fd = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0)
    return _check(fd, "landlock_create_ruleset")


def _allow_reading(libc: ctypes.CDLL, ruleset: int, root: str, abi: int) -> None:
    try:
        fd = os.open(root, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # gone since the parent listed it: nothing to allow
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        access = ACCESS_FS_READ_FILE | (ACCESS_FS_READ_DIR if is_dir else 0)
        rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
        _check(
            libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH,
                         ctypes.byref(rule), 0),
            f"landlock_add_rule({root})",
        )  # fmt: skip
    finally:
        os.close(fd)


def _drop_capabilities(libc: ctypes.CDLL) -> None:
    """Root's capabilities (raw sockets, ptrace, reading any file...) are gone for good."""
    number = SYS_CAPSET.get(os.uname().machine)
    if os.geteuid() != 0 or number is None:
        return
    header = _CapHeader(version=CAPABILITY_VERSION_3, pid=0)
    data = (_CapData * 2)()
    _check(libc.syscall(number, ctypes.byref(header), ctypes.byref(data)), "capset")


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise SandboxError(f"{what} failed: {os.strerror(code) or errno.errorcode.get(code)}")
    return result
