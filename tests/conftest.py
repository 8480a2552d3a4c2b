"""Fixtures shared by several test modules."""

from moto_server import aws_env, moto_endpoint  # noqa: F401
