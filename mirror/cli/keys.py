"""`mirror keygen` and `mirror keys certify`: the signing key and the offline root."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from mirror import cli  # cli.utc_now: the one clock, read through the package so a test can set it
from mirror.cli import EXIT_OK, add_common, config_from, subcommand

log = logging.getLogger("mirror")


def add_keygen(commands: Any) -> None:
    parser = subcommand(
        commands,
        "keygen",
        cmd_keygen,
        "make a key pair: the online signing key, or (--root) the offline root key",
    )
    parser.add_argument("--root", action="store_true", help="make the offline root key")
    parser.add_argument(
        "--out",
        help="folder for the key files (default: the [signing] files of the config; "
        "with --root: the current folder)",
    )
    protection = parser.add_mutually_exclusive_group()
    protection.add_argument(
        "--passphrase-env",
        help="encrypt the secret key with the passphrase in this environment variable",
    )
    protection.add_argument(
        "--passphrase-file",
        help="encrypt the secret key with the passphrase in this file (one line)",
    )
    protection.add_argument(
        "--no-passphrase",
        action="store_true",
        help="with --root: leave the root key unencrypted (refused otherwise); the online "
        "key is unencrypted by default, since it must sign unattended",
    )


def cmd_keygen(args: argparse.Namespace) -> int:
    from mirror.trust.keyfiles import make_keys

    config = None if args.out or args.root else config_from(args)
    written = make_keys(
        config, root=args.root, out=args.out, passphrase_env=args.passphrase_env,
        passphrase_file=args.passphrase_file, unencrypted_root=args.no_passphrase,
    )  # fmt: skip
    log.info("secret key: %s (mode 0600; never share it)", written.secret_path)
    log.info("public key: %s", written.public_path)
    log.info("public key line: %s", written.public_line)
    return EXIT_OK


def add_keys(commands: Any) -> None:
    parser = subcommand(commands, "keys", cmd_keys_certify, "manage keys with the offline root")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    certify = actions.add_parser(
        "certify",
        help="the root certifies the online signing key (rotation, revocation)",
        description="Write keys.json + keys.json.minisig: the root certifies the signing "
        "key of the config for a period; --revoke cuts off a stolen key.",
    )
    add_common(certify, sub=True)
    certify.add_argument("--root-key", required=True, help="the offline root's secret key file")
    certify.add_argument(
        "--days",
        type=int,
        default=45,
        help="how long the certificate lasts (1 to 180, default 45): a revoked key can fool "
        "a reader who never saw the revocation until then, so renew monthly",
    )
    certify.add_argument(
        "--revoke", action="append", default=[], help="revoke this public key (file or RW...)"
    )
    certify.add_argument(
        "--reset-versions",
        action="store_true",
        help="start a new epoch: manifests may start over from version 1",
    )
    passphrase = certify.add_mutually_exclusive_group()
    passphrase.add_argument(
        "--passphrase-env", help="the root key's passphrase is in this environment variable"
    )
    passphrase.add_argument("--passphrase-file", help="the root key's passphrase is in this file")


def cmd_keys_certify(args: argparse.Namespace) -> int:
    from mirror.trust.keyfiles import certify_signing_key

    config = config_from(args)
    result = certify_signing_key(
        config,
        root_key_file=Path(args.root_key),
        days=args.days,
        revoke=tuple(args.revoke),
        reset_versions=args.reset_versions,
        passphrase_env=args.passphrase_env,
        passphrase_file=args.passphrase_file,
        now=cli.utc_now(),
    )
    log.info("%s", result.summary())
    for warning in result.warnings:
        log.warning("warning: %s", warning)
    return EXIT_OK
