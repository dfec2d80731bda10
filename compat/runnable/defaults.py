"""The reference's constants, with the values it gives them.

The environment-variable names are read when a run starts (never written): see
``compat/README.md``, *Environment variables*.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CATALOG_LOCATION_FOLDER",
    "CREATED",
    "ENV_RUN_ID",
    "FAIL",
    "LOGGER_NAME",
    "LOG_LEVEL",
    "LOG_LOCATION_FOLDER",
    "MAX_TIME",
    "NAME",
    "PARAMETER_PREFIX",
    "PROCESSING",
    "RANDOM_RUN_ID_LEN",
    "RETRY_RUN_ID",
    "RUNNABLE_CONFIGURATION_FILE",
    "RUNNABLE_PARAMETERS_FILE",
    "RUNNABLE_RUN_TAG",
    "SUCCESS",
    "USER_CONFIG_FILE",
]

NAME: Final = "runnable"
LOGGER_NAME: Final = "runnable"
LOG_LEVEL: Final = "WARNING"

# Environment variables (each constant's value is its own name).
RUNNABLE_CONFIGURATION_FILE: Final = "RUNNABLE_CONFIGURATION_FILE"
RUNNABLE_RUN_TAG: Final = "RUNNABLE_RUN_TAG"
RUNNABLE_PARAMETERS_FILE: Final = "RUNNABLE_PARAMETERS_FILE"
PARAMETER_PREFIX: Final = "RUNNABLE_PRM_"
ENV_RUN_ID: Final = "RUNNABLE_RUN_ID"
RETRY_RUN_ID: Final = "RUNNABLE_RETRY_RUN_ID"

# Run and step statuses, as the run log writes them.
CREATED: Final = "CREATED"
PROCESSING: Final = "PROCESSING"
SUCCESS: Final = "SUCCESS"
FAIL: Final = "FAIL"

LOG_LOCATION_FOLDER: Final = ".run_log_store"
CATALOG_LOCATION_FOLDER: Final = ".catalog"
USER_CONFIG_FILE: Final = "runnable-config.yaml"
RANDOM_RUN_ID_LEN: Final = 6
MAX_TIME: Final = 86400
