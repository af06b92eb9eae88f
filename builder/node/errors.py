"""Errors that end a run with a clear message and a distinct exit code."""

from __future__ import annotations

# Exit codes (also documented in `clusterctl --help`).
EXIT_FAILED = 1  # a step or command failed; rerun resumes
EXIT_CONFIG = 2  # cluster.json missing or invalid
EXIT_IDENTITY = 3  # this machine is not a node of cluster.json
EXIT_UNSAFE = 4  # refused: continuing could destroy data


class NodeError(Exception):
    exit_code = EXIT_FAILED


class ConfigError(NodeError):
    exit_code = EXIT_CONFIG


class IdentityError(NodeError):
    exit_code = EXIT_IDENTITY


class UnsafeError(NodeError):
    exit_code = EXIT_UNSAFE
