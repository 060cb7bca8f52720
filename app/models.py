"""Imports every table module so both metadata objects are complete (for alembic and tests)."""

import app.activity.models
import app.catalog.models
import app.channels.models
import app.customers.models
import app.fulfillment.models
import app.inbox
import app.inventory.models
import app.orders.models
import app.outbox
import app.routing.models  # noqa: F401
import billing.models  # noqa: F401
import tenants.models  # noqa: F401
