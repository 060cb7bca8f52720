"""Imports every table module so both metadata objects are complete (for alembic and tests)."""

import tenants.models  # noqa: F401
