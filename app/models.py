"""Imports every table module so both metadata objects are complete (for alembic and tests)."""

import app.activity.models
import app.inbox
import app.outbox  # noqa: F401
import tenants.models  # noqa: F401
