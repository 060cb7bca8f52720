"""Alembic environment for the control schema. Run through app.migrate (it passes the connection)."""

from alembic import context

import app.models  # noqa: F401  (registers every control table)
from app.db import CONTROL_SCHEMA, ControlBase

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=ControlBase.metadata,
        version_table_schema=CONTROL_SCHEMA,
        include_schemas=True,
        include_name=lambda name, type_, _: type_ != "schema" or name == CONTROL_SCHEMA,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise SystemExit("run upgrades with `oms migrate`; alembic is used directly only for `revision`")
_run(connection)
