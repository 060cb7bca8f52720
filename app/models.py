"""Imports every table module so both metadata objects are complete (for alembic and tests)."""

import app.activity.models
import app.catalog.models
import app.channels.models
import app.inbox
import app.inventory.models
import app.outbox
import tenants.models  # noqa: F401
