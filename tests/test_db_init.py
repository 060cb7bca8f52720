"""``app.db.init_db``: one process-wide Database; options it cannot apply are refused, not ignored."""

from __future__ import annotations

import pytest

from app import db as dbmod


async def test_init_db_returns_the_open_database_or_refuses_other_options(db):
    assert dbmod.init_db() is db
    assert dbmod.init_db(db.url) is db
    same = dict(db.options)
    assert dbmod.init_db(db.url, **same) is db  # the options it has: fine
    with pytest.raises(RuntimeError, match="pool_size"):
        dbmod.init_db(db.url, pool_size=db.options["pool_size"] + 1)
    with pytest.raises(RuntimeError, match="statement_cache_size"):
        dbmod.init_db(db.url, statement_cache_size=db.options["statement_cache_size"] + 7)
    assert dbmod.get_db() is db  # a refused call changes nothing


async def test_database_names_for_create_and_drop_are_checked():
    for bad in ("", "Upper", 'x"; DROP DATABASE postgres; --', "a" * 64):
        with pytest.raises(ValueError):
            await dbmod.create_database("postgresql://nowhere/postgres", bad)
        with pytest.raises(ValueError):
            await dbmod.drop_database("postgresql://nowhere/postgres", bad)
