"""Prefect 1's ``prefect.utilities`` helpers that storage code imports (see :mod:`gitflows.utilities.storage`)."""
