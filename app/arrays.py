"""Lists as SQL arrays, for set-based statements: ``unnest()`` of array parameters to join on.

One array parameter keeps the SQL text, and so its prepared statement, the same however many values
there are (``IN (…)`` renders one parameter per value, a new statement for every list length).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import BigInteger, Integer, String, bindparam, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine


def ids(values: Iterable[int]):
    """A ``bigint[]`` parameter."""
    return bindparam(None, list(values), type_=ARRAY(BigInteger))


def texts(values: Iterable[str]):
    """A ``varchar[]`` parameter."""
    return bindparam(None, list(values), type_=ARRAY(String))


def ints(values: Iterable[int]):
    """An ``integer[]`` parameter."""
    return bindparam(None, list(values), type_=ARRAY(Integer))


def id_table(values: Iterable[int], name: str = "ids"):
    """``unnest(<bigint[]>) AS name(id)``: a list of ids to join on."""
    return func.unnest(ids(values)).table_valued("id").render_derived(name=name)


def table(alias: str, /, **columns: tuple[Iterable, TypeEngine]):
    """``unnest(<array>, <array>, …) AS name(col, …)``: parallel lists as rows to join on."""
    params = [bindparam(None, list(values), type_=ARRAY(type_)) for values, type_ in columns.values()]
    return func.unnest(*params).table_valued(*columns).render_derived(name=alias)
