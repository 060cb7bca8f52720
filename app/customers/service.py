"""One customer across channels: an order finds its customer by any identity it shows (phone, e-mail,
platform buyer id), and the identities it brings that we did not know are attached to that customer.

Identities are keyed hashes (see ``identity``); only masked forms are kept readable. Concurrent orders
of a new customer race on the unique (kind, value_hash) index: every writer inserts with ON CONFLICT DO
NOTHING, in one fixed order, then re-reads who won, so two orders never create two customers for one
phone. When an order's identities already point at different customers, the oldest one wins and the
new identities join it; existing customers are never merged behind the operator's back.
"""

from __future__ import annotations

from sqlalchemy import String, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import arrays
from app.channels.normalized import Address, Buyer
from app.customers import identity
from app.customers.models import Customer, CustomerIdentity
from app.errors import NotFound, UserError


def identity_values(buyer: Buyer, address: Address, platform: str) -> list[tuple[str, str]]:
    """The normalised (kind, value) pairs an order shows: phone (buyer's, else the recipient's),
    e-mail, and the platform buyer id as ``platform:id``."""
    out: list[tuple[str, str]] = []
    phone = identity.normalise_phone(buyer.phone or address.phone, address.country)
    if phone:
        out.append(("phone", phone))
    email = identity.normalise_email(buyer.email)
    if email:
        out.append(("email", email))
    if buyer.platform_buyer_id:
        out.append(("buyer", f"{platform}:{buyer.platform_buyer_id}"))
    return out


def identity_hashes(tenant_id: int, buyer: Buyer, address: Address, platform: str) -> list[tuple[str, str]]:
    """(kind, value_hash) pairs, sorted: inserting them in one order everywhere cannot deadlock."""
    return sorted(
        {
            (kind, identity.tenant_hash(tenant_id, kind, value))
            for kind, value in identity_values(buyer, address, platform)
        }
    )


async def identity_owners(session: AsyncSession, hashes: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The customer each known (kind, value_hash) identity belongs to."""
    if not hashes:
        return {}
    wanted = arrays.table("h", kind=([k for k, _ in hashes], String), value=([v for _, v in hashes], String))
    rows = await session.execute(
        select(CustomerIdentity.kind, CustomerIdentity.value_hash, CustomerIdentity.customer_id).where(
            CustomerIdentity.kind == wanted.c.kind, CustomerIdentity.value_hash == wanted.c.value
        )
    )
    return {(kind, value_hash): customer_id for kind, value_hash, customer_id in rows}


async def _attach(session: AsyncSession, customer_id: int, hashes: list[tuple[str, str]]) -> None:
    if hashes:
        await session.execute(
            insert(CustomerIdentity)
            .values([{"customer_id": customer_id, "kind": k, "value_hash": h} for k, h in sorted(hashes)])
            .on_conflict_do_nothing(index_elements=["kind", "value_hash"])
        )


async def resolve_customer(
    session: AsyncSession,
    tenant_id: int,
    buyer: Buyer,
    address: Address,
    platform: str,
    *,
    count_order: bool = True,
) -> Customer:
    """The customer this buyer is (created when no identity is known), with the order counted."""
    hashes = identity_hashes(tenant_id, buyer, address, platform)
    owners = await identity_owners(session, hashes)
    created: Customer | None = None  # only visible to this transaction until it commits
    if owners:
        customer_id = min(owners.values())
    else:
        created = Customer(
            name=display_name(buyer, address),
            phone_masked=identity.mask_phone(buyer.phone or address.phone),
            email_masked=identity.mask_email(buyer.email),
            tags=[],
            blacklisted=False,
            order_count=0,
        )
        session.add(created)
        await session.flush()
        customer_id = created.id
    await _attach(session, customer_id, [h for h in hashes if h not in owners])
    if created is not None and hashes:
        # A concurrent order may have claimed some of our identities first: then its customer (the
        # oldest, if several) is this buyer, and the one we just made goes. Whatever our own id is.
        others = {
            owner for owner in (await identity_owners(session, hashes)).values() if owner != customer_id
        }
        if others:
            winner = min(others)
            await session.execute(
                update(CustomerIdentity)
                .where(CustomerIdentity.customer_id == customer_id)
                .values(customer_id=winner)
            )
            await session.execute(delete(Customer).where(Customer.id == customer_id))
            session.expunge(created)
            customer_id = winner
    if count_order:
        await session.execute(
            update(Customer).where(Customer.id == customer_id).values(order_count=Customer.order_count + 1)
        )
    customer = await session.get(Customer, customer_id, populate_existing=True)
    assert customer is not None
    if customer.phone_masked is None:
        customer.phone_masked = identity.mask_phone(buyer.phone or address.phone)
    if customer.email_masked is None:
        customer.email_masked = identity.mask_email(buyer.email)
    if not customer.name:
        customer.name = display_name(buyer, address)
    await session.flush()
    return customer


def display_name(buyer: Buyer, address: Address) -> str:
    return (buyer.name or address.name or buyer.nick or "")[:200]


MAX_TAGS = 20
MAX_TAG_LENGTH = 50  # customers.tags is varchar(50)[]


def normalise_tags(tags: list[str]) -> list[str]:
    """Tags as routing rules compare them: trimmed, lower-case, each once (first spelling's place kept).
    "VIP " and "vip" are one tag, so a rule written ``vip`` matches whatever the operator typed."""
    out: list[str] = []
    for i, raw in enumerate(tags):
        tag = raw.strip().lower()
        if not 1 <= len(tag) <= MAX_TAG_LENGTH or not tag.isprintable():
            raise UserError(
                "INVALID_TAG",
                f"a tag is 1-{MAX_TAG_LENGTH} printable characters once trimmed",
                ["tags", str(i)],
            )
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise UserError("TOO_MANY_TAGS", f"a customer has at most {MAX_TAGS} tags", "tags")
    return out


async def set_tags(session: AsyncSession, customer_id: int, tags: list[str]) -> Customer:
    """Replace the customer's tags (an empty list clears them); the next routing reads them."""
    clean = normalise_tags(tags)
    customer = await session.scalar(select(Customer).where(Customer.id == customer_id).with_for_update())
    if customer is None:
        raise NotFound("customer", "customerId")
    customer.tags = clean
    await session.flush()
    return customer
