"""Alembic environment for ONE tenant schema. app.migrate passes the connection and the schema.

Scripts create tables in the placeholder schema ``tenant``; the connection's ``schema_translate_map``
puts them into the real schema, and the version table lives in that schema too (one per tenant).
Raw ``op.execute()`` SQL is not translated: use SQLAlchemy constructs, or read ``op.get_context()
.version_table_schema`` for the real name.
"""

from alembic import context

import app.models  # noqa: F401  (registers every tenant table)
from app.db import TENANT_PLACEHOLDER, TenantBase, checked_schema

config = context.config
connection = config.attributes["connection"]
schema = checked_schema(config.attributes["schema"])  # it names DDL: checked again here

context.configure(
    connection=connection.execution_options(schema_translate_map={TENANT_PLACEHOLDER: schema}),
    target_metadata=TenantBase.metadata,
    version_table_schema=schema,
)
with context.begin_transaction():
    context.run_migrations()
