"""Carriers (issue #5): choosing one per shipment (pure ``choose``: mandated, requested, weighted cost
and SLA, cold chain, cut-off, explained), the carriers API with its validation, the policy's carrier
weights, and an order routed by the real worker that gets the expected carrier on its fulfilment order
and the explanation in ``orderRouting``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from app.catalog.models import Material
from app.db import tenant_session
from app.errors import UserError
from app.routing.carriers import (
    DEFAULT_UNIT_WEIGHT_G,
    Area,
    CarrierInfo,
    Parcel,
    area_of,
    choose,
    clean_services,
    price,
)
from tests.carriers_support import CREATE, DEACTIVATE, LIST, NODE, ROUTING, UPDATE, create, rate
from tests.factories import tenant_ref
from tests.routing_support import (
    CHENGDU,
    SHANGHAI,
    UPDATE_POLICY,
    decisions,
    drain,
    fulfillment_orders,
    gid,
    ingest,
    make_shop,
    warehouse,
)

CHENGDU_AREA = Area("Sichuan", "Southwest", "Chengdu")
SHANGHAI_AREA = Area("Shanghai", "East", "Shanghai")
BEIJING_AREA = Area("Beijing", "North", "Beijing")
MORNING = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
EVENING = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai


def carrier(code: str, *, active=True, cold=False, cutoff=None, sla=2.0, **services) -> CarrierInfo:
    """``services``: name -> (rates, sla_days or None)."""
    table = {}
    for name, (rates, days) in services.items():
        table[name] = {"rates": clean_services({name: {"rates": rates}})[name]["rates"]}
        if days is not None:
            table[name]["sla_days"] = days
    return CarrierInfo(code, code, table, sla, cold, cutoff, active)


SF = carrier("SF", std=({"*": rate(20, 6)}, 1.0))
YTO = carrier("YTO", eco=({"Southwest": rate(8, 2), "East": rate(9, 2)}, 3.0))
ZTO = carrier("ZTO", eco=({"Sichuan": rate(11, 1)}, 2.0))
PARCEL = Parcel(SHANGHAI_AREA, CHENGDU_AREA, 2.5)


def by_service(choice) -> dict[str, dict]:
    return {f"{o.carrier}/{o.service}": o.to_dict() for o in choice.options}


# ---- choose (pure) -----------------------------------------------------------------------------------


def test_the_cheapest_for_the_destination_and_weight_wins_when_cost_counts_most():
    choice = choose([SF, YTO, ZTO], PARCEL, weights={"cost": 1, "sla": 0}, now=MORNING)
    assert (choice.carrier, choice.service, choice.how) == ("YTO", "eco", "scored")
    costs = {k: v["cost"] for k, v in by_service(choice).items()}
    # 2.5 kg bills 3 kg: first kg + 2 extra kg; YTO's region rate, ZTO's province rate, SF's '*'.
    assert costs == {"SF/std": 32.0, "YTO/eco": 12.0, "ZTO/eco": 13.0}
    assert (
        by_service(choice)["YTO/eco"]["chosen"] and by_service(choice)["YTO/eco"]["rate_key"] == "Southwest"
    )


def test_weight_and_region_change_the_cheapest():
    heavy = Parcel(SHANGHAI_AREA, CHENGDU_AREA, 9.2)  # bills 10 kg: YTO 8+18=26, ZTO 11+9=20
    choice = choose([SF, YTO, ZTO], heavy, weights={"cost": 1, "sla": 0}, now=MORNING)
    assert (choice.carrier, by_service(choice)["ZTO/eco"]["cost"]) == ("ZTO", 20.0)
    # To Beijing only SF has a rate: the others are left out, and say why.
    far = choose([SF, YTO, ZTO], Parcel(SHANGHAI_AREA, BEIJING_AREA, 1), weights={"cost": 1}, now=MORNING)
    assert far.carrier == "SF"
    assert by_service(far)["YTO/eco"]["excluded"] == "no rate for Beijing (North)"
    assert by_service(far)["ZTO/eco"]["cost"] is None


def test_a_local_rate_applies_within_the_origin_province():
    local = carrier("LOCAL", std=({"local": rate(5, 1), "*": rate(30, 1)}, 1.0))
    same = choose([local], Parcel(CHENGDU_AREA, CHENGDU_AREA, 1), now=MORNING)
    other = choose([local], Parcel(SHANGHAI_AREA, CHENGDU_AREA, 1), now=MORNING)
    assert by_service(same)["LOCAL/std"]["cost"] == 5.0 and by_service(other)["LOCAL/std"]["cost"] == 30.0


def test_the_sla_weight_flips_the_winner():
    cheap = choose([SF, YTO], PARCEL, weights={"cost": 0.8, "sla": 0.2}, now=MORNING)
    fast = choose([SF, YTO], PARCEL, weights={"cost": 0.2, "sla": 0.8}, now=MORNING)
    assert cheap.carrier == "YTO" and fast.carrier == "SF"
    scores = {k: v["score"] for k, v in by_service(fast).items()}
    assert scores == {"SF/std": 0.2, "YTO/eco": 0.8}  # normalised: best 0, worst 1, times the weight


def test_a_mandated_carrier_wins_when_it_can_serve():
    choice = choose([SF, YTO], PARCEL, mandated="SF", requested="YTO", weights={"cost": 1}, now=MORNING)
    assert (choice.carrier, choice.service, choice.how) == ("SF", "std", "mandated")
    assert "Carrier SF/std: the mandated carrier" in choice.explain()


def test_a_mandated_carrier_that_cannot_serve_falls_back_and_says_why():
    inactive = carrier("JD", active=False, std=({"*": rate(1, 1)}, 1.0))
    choice = choose([SF, YTO, inactive], PARCEL, mandated="JD", requested="SF", now=MORNING)
    assert (choice.carrier, choice.how) == ("SF", "requested")
    assert choice.notes == ["Mandated carrier JD cannot serve (std: inactive); falling back"]
    # Neither the mandated nor the requested one can: the weighted score decides.
    choice = choose([SF, YTO, inactive], PARCEL, mandated="JD", requested="EMS", weights={"cost": 1})
    assert (choice.carrier, choice.how) == ("YTO", "scored")
    assert choice.notes[1] == "Requested carrier EMS is not one of the tenant's carriers; falling back"


def test_the_requested_carrier_matches_code_or_name():
    named = CarrierInfo("SF", "顺丰速运", SF.services, 2.0)
    choice = choose([named, YTO], PARCEL, requested="顺丰速运", weights={"cost": 1}, now=MORNING)
    assert (choice.carrier, choice.how) == ("SF", "requested")


def test_cold_chain_parcels_exclude_carriers_without_it():
    cold_sf = carrier("SFCOLD", cold=True, std=({"*": rate(40, 10)}, 1.0))
    parcel = Parcel(SHANGHAI_AREA, CHENGDU_AREA, 1, cold_chain=True)
    choice = choose([SF, YTO, cold_sf], parcel, mandated="SF", weights={"cost": 1}, now=MORNING)
    assert (choice.carrier, choice.how) == ("SFCOLD", "scored")
    assert by_service(choice)["YTO/eco"]["excluded"] == "not cold-chain, and the parcel needs it"
    assert (
        "Mandated carrier SF cannot serve (std: not cold-chain, and the parcel needs it)" in choice.explain()
    )
    # A service may say it is cold-chain although its carrier is not.
    mixed = CarrierInfo("YTO", "YTO", {"cold": {"rates": {"*": rate(50, 1)}, "cold_chain": True}}, 2.0)
    assert choose([mixed], parcel, now=MORNING).service == "cold"


def test_after_the_cutoff_a_day_is_added_to_the_sla():
    late_sf = carrier("SF", cutoff="17:00", std=({"*": rate(20, 6)}, 1.0))
    morning = choose([late_sf, YTO], PARCEL, weights={"sla": 1, "cost": 0}, now=MORNING)
    evening = choose([late_sf, YTO], PARCEL, weights={"sla": 1, "cost": 0}, now=EVENING)
    assert (
        by_service(morning)["SF/std"]["sla_days"] == 1.0 and not by_service(morning)["SF/std"]["after_cutoff"]
    )
    assert by_service(evening)["SF/std"]["sla_days"] == 2.0 and by_service(evening)["SF/std"]["after_cutoff"]
    assert "after cut-off +1 day" in evening.explain()
    # A service's own cut-off wins over the carrier's.
    own = CarrierInfo(
        "SF", "SF", {"std": {"rates": {"*": rate(1, 1)}, "cutoff": "19:00"}}, 1.0, cutoff="17:00"
    )
    assert by_service(choose([own], PARCEL, now=EVENING))["SF/std"]["sla_days"] == 1.0


def test_the_explanation_lists_every_carrier_considered():
    inactive = carrier("JD", active=False, std=({"*": rate(1, 1)}, 1.0))
    bare = CarrierInfo("EMS", "EMS", {}, 4.0)
    choice = choose([SF, YTO, inactive, bare], PARCEL, weights={"cost": 1, "sla": 0}, now=MORNING)
    text = choice.explain()
    assert text.startswith(
        "Carrier YTO/eco: lowest weighted score (cost 1, SLA 0), cost 12.00, 3 days (2.5 kg)."
    )
    for part in (
        "SF/std cost 32.00 (*), 1 days, score 1.000",
        "YTO/eco cost 12.00 (Southwest), 3 days, score 0.000",
        "JD/std excluded: inactive",
        "EMS excluded: no services set up",
    ):
        assert part in text, part
    stored = choice.to_dict()
    assert stored["explanation"] == text and stored["carrier"] == "YTO" and len(stored["options"]) == 4
    # Nobody can serve: no carrier, and the reasons.
    none = choose([inactive], PARCEL, requested="JD", now=MORNING)
    assert (none.carrier, none.how) == (None, "none_can_serve")


def test_without_carriers_the_mandated_or_requested_code_is_kept():
    assert choose([], PARCEL, mandated="SF", requested="YTO").carrier == "SF"
    assert (choose([], PARCEL, requested="YTO").carrier, choose([], PARCEL).carrier) == ("YTO", None)


def test_prices_bill_whole_kilograms_and_places_are_found_in_either_language():
    assert [price(rate(10, 2), w) for w in (0.2, 1.0, 1.01, 3.0)] == [10.0, 10.0, 12.0, 14.0]
    assert area_of("成都市", "四川省") == CHENGDU_AREA
    assert area_of(None, "广东省") == Area("Guangdong", "South", None)
    assert area_of("Atlantis", "Nowhere") == Area()


@pytest.mark.parametrize(
    ("services", "field", "message"),
    [
        ([], ["services"], "services must be an object"),
        ({"std": {"rates": {}}}, ["services", "std", "rates"], "non-empty"),
        (
            {"std": {"rates": {"Atlantis": rate(1, 1)}}},
            ["services", "std", "rates", "Atlantis"],
            "unknown rate",
        ),
        (
            {"std": {"rates": {"*": {"first_kg": -1, "extra_kg": 1}}}},
            ["services", "std", "rates", "*", "first_kg"],
            "between 0",
        ),
        (
            {"std": {"rates": {"*": {"first_kg": 1}}}},
            ["services", "std", "rates", "*", "extra_kg"],
            "required",
        ),
        ({"std": {"rates": {"*": rate(1, 1)}, "speed": 1}}, ["services", "std", "speed"], "unknown key"),
        ({"std": {"rates": {"*": rate(1, 1)}, "cutoff": "25:00"}}, ["services", "std", "cutoff"], "HH:MM"),
        (
            {"std": {"rates": {"*": rate(1, 1)}, "cold_chain": "yes"}},
            ["services", "std", "cold_chain"],
            "true",
        ),
        ({"std": {"rates": {"四川": rate(1, 1), "Sichuan": rate(1, 1)}}}, None, "given twice"),
        ({"a b": {"rates": {"*": rate(1, 1)}}}, ["services", "a b"], "service code"),
    ],
)
def test_bad_services_name_the_field(services, field, message):
    with pytest.raises(UserError) as err:
        clean_services(services)
    assert err.value.code == "INVALID_CARRIER" and message in err.value.message
    if field is not None:
        assert err.value.field == field


# ---- GraphQL -----------------------------------------------------------------------------------------


async def test_carriers_are_created_listed_updated_and_deactivated(gql, tenant_a):
    sf = await create(
        gql,
        tenant_a,
        code="SF",
        name="顺丰速运",
        services={"std": {"rates": {"四川省": rate(12, 2), "*": rate(20, 5)}, "sla_days": 1}},
        slaDays=1.5,
        cutoff="17:30",
    )
    assert sf["services"] == {
        "std": {"rates": {"Sichuan": rate(12.0, 2.0), "*": rate(20.0, 5.0)}, "sla_days": 1.0}
    }
    assert (sf["slaDays"], sf["cutoff"], sf["active"], sf["coldChain"]) == (1.5, "17:30", True, False)
    yto = await create(gql, tenant_a, code="YTO", name="YTO", services={"eco": {"rates": {"*": rate(8, 2)}}})

    # Validation: a duplicate code, bad rates, a bad cut-off.
    data = await gql(CREATE, {"input": {"code": "SF", "name": "again"}}, api_key=tenant_a.api_key)
    assert data["createCarrier"]["userErrors"] == [
        {"field": ["code"], "message": "a carrier with code 'SF' exists", "code": "CARRIER_EXISTS"}
    ]
    bad = {
        "code": "JD",
        "name": "JD",
        "services": {"std": {"rates": {"*": {"first_kg": "ten", "extra_kg": 1}}}},
    }
    [error] = (await gql(CREATE, {"input": bad}, api_key=tenant_a.api_key))["createCarrier"]["userErrors"]
    assert (error["code"], error["field"]) == (
        "INVALID_CARRIER",
        ["services", "std", "rates", "*", "first_kg"],
    )
    bad = {"code": "JD", "name": "JD", "cutoff": "5pm"}
    [error] = (await gql(CREATE, {"input": bad}, api_key=tenant_a.api_key))["createCarrier"]["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_CARRIER", ["cutoff"])
    bad = {"code": " ", "name": "JD"}
    [error] = (await gql(CREATE, {"input": bad}, api_key=tenant_a.api_key))["createCarrier"]["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_CARRIER", ["code"])

    # Update: fields left out keep their value; services replaces the table; cutoff can be cleared.
    data = await gql(
        UPDATE,
        {
            "input": {
                "id": sf["id"],
                "slaDays": 2,
                "cutoff": None,
                "services": {"x": {"rates": {"East": rate(1, 1)}}},
            }
        },
        api_key=tenant_a.api_key,
    )
    updated = data["updateCarrier"]["carrier"]
    assert (updated["slaDays"], updated["cutoff"], updated["name"]) == (2.0, None, "顺丰速运")
    assert updated["services"] == {"x": {"rates": {"East": rate(1.0, 1.0)}}}
    data = await gql(
        UPDATE, {"input": {"id": sf["id"], "services": {"x": {"rates": {}}}}}, api_key=tenant_a.api_key
    )
    [error] = data["updateCarrier"]["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_CARRIER", ["services", "x", "rates"])
    data = await gql(UPDATE, {"input": {"id": sf["id"], "name": None}}, api_key=tenant_a.api_key)
    assert data["updateCarrier"]["userErrors"][0]["field"] == ["name"]
    node = (await gql(NODE, {"id": sf["id"]}, api_key=tenant_a.api_key))["node"]
    assert (
        node["services"] == updated["services"] and node["name"] == "顺丰速运"
    )  # the failures changed nothing

    # Deactivate: still readable, left out of the active list.
    data = await gql(DEACTIVATE, {"input": {"id": yto["id"]}}, api_key=tenant_a.api_key)
    assert data["deactivateCarrier"]["carrier"]["active"] is False
    listed = await gql(LIST, {"filter": {"active": True}}, api_key=tenant_a.api_key)
    assert [e["node"]["code"] for e in listed["carriers"]["edges"]] == ["SF"]
    listed = await gql(LIST, {}, api_key=tenant_a.api_key)
    assert [e["node"]["code"] for e in listed["carriers"]["edges"]] == ["SF", "YTO"]
    listed = await gql(LIST, {"filter": {"active": False}}, api_key=tenant_a.api_key)
    assert [e["node"]["code"] for e in listed["carriers"]["edges"]] == ["YTO"]
    data = await gql(DEACTIVATE, {"input": {"id": "not-an-id"}}, api_key=tenant_a.api_key)
    assert data["deactivateCarrier"]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_only_admins_change_carriers(gql, tenant_a):
    created = await gql(
        "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }",
        {"input": {"name": "ops", "scopes": ["orders:read", "orders:write"]}},
        token=tenant_a.token,
    )
    key = created["createApiKey"]["key"]
    sf = await create(gql, tenant_a, code="SF", name="SF")
    listed = await gql(LIST, {}, api_key=key)
    assert [e["node"]["id"] for e in listed["carriers"]["edges"]] == [sf["id"]]
    for query, given in (
        (CREATE, {"code": "JD", "name": "JD"}),
        (UPDATE, {"id": sf["id"], "slaDays": 9}),
        (DEACTIVATE, {"id": sf["id"]}),
    ):
        r = await gql.raw(query, {"input": given}, api_key=key)
        assert r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    node = (await gql(NODE, {"id": sf["id"]}, api_key=tenant_a.api_key))["node"]
    assert (node["slaDays"], node["active"]) == (2.0, True)


async def test_the_policy_keeps_carrier_weights(gql, tenant_a):
    data = await gql("{ routingPolicy { carrierWeights } }", api_key=tenant_a.api_key)
    assert data["routingPolicy"]["carrierWeights"] == {"cost": 0.5, "sla": 0.5}
    query = UPDATE_POLICY.replace("updatedBy", "updatedBy carrierWeights")
    data = await gql(query, {"input": {"carrierWeights": {"sla": 3}}}, api_key=tenant_a.api_key)
    assert data["updateRoutingPolicy"]["policy"]["carrierWeights"] == {"cost": 0.5, "sla": 3.0}
    # Another change keeps them.
    data = await gql(query, {"input": {"storeRadiusKm": 5}}, api_key=tenant_a.api_key)
    assert data["updateRoutingPolicy"]["policy"]["carrierWeights"] == {"cost": 0.5, "sla": 3.0}
    for bad, field in (
        ({"speed": 1}, ["carrierWeights", "speed"]),
        ({"cost": -1}, ["carrierWeights", "cost"]),
    ):
        data = await gql(query, {"input": {"carrierWeights": bad}}, api_key=tenant_a.api_key)
        [error] = data["updateRoutingPolicy"]["userErrors"]
        assert (error["code"], error["field"]) == ("INVALID_POLICY", field)
    data = await gql("{ routingPolicy { carrierWeights } }", api_key=tenant_a.api_key)
    assert data["routingPolicy"]["carrierWeights"] == {"cost": 0.5, "sla": 3.0}


# ---- end to end ---------------------------------------------------------------------------------------


async def test_a_routed_order_gets_the_chosen_carrier_explained(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU, city="成都", province="四川")
    shanghai = await warehouse(ref, "WH Shanghai", SHANGHAI, city="Shanghai", province="Shanghai")
    shop = await make_shop(ref, {chengdu: 5, shanghai: 5})
    async with tenant_session(ref) as session:  # 300 g x1 + 200 g x2, the gift bag unknown (default)
        for sku, grams in (("SKU-1001-RED-M", 300), ("SKU-2002", 200)):
            await session.execute(
                update(Material).where(Material.id == shop.materials[sku]).values(weight_g=grams)
            )
    weight_kg = (300 + 2 * 200 + DEFAULT_UNIT_WEIGHT_G) / 1000
    # The fixture order asks for SF, which has no rate to Sichuan: the weighted score decides.
    await create(
        gql, tenant_a, code="SF", name="SF", services={"std": {"rates": {"East": rate(12, 2)}, "sla_days": 1}}
    )
    await create(
        gql,
        tenant_a,
        code="YTO",
        name="YTO",
        services={"eco": {"rates": {"local": rate(6, 1)}, "sla_days": 3}},
    )
    await create(
        gql, tenant_a, code="JD", name="JD", services={"fast": {"rates": {"*": rate(18, 4)}, "sla_days": 1}}
    )
    await create(
        gql, tenant_a, code="COLD", name="Cold", active=False, services={"c": {"rates": {"*": rate(1, 1)}}}
    )

    order_id = await ingest(shop, "CARRIER-1")
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    assert (fo.location_id, fo.carrier) == (chengdu, "YTO")  # local rate 6 + 1 (1.2 kg bills 2) vs JD 22
    data = await gql(ROUTING, {"id": gid("Order", ref, order_id)}, api_key=tenant_a.api_key)
    [decision] = data["orderRouting"]["decisions"]
    [shipment] = decision["shipments"]
    assert (shipment["carrier"], shipment["carrierService"]) == ("YTO", "eco")
    text = shipment["carrierExplanation"]
    assert text.startswith(
        f"Carrier YTO/eco: lowest weighted score (cost 0.5, SLA 0.5), cost 7.00, 3 days ({weight_kg:g} kg)"
    )
    assert "Requested carrier SF cannot serve (std: no rate for Sichuan (Southwest)); falling back" in text
    assert "COLD/c excluded: inactive" in text
    options = {o["carrier"]: o for o in shipment["carrierOptions"]}
    assert (options["JD"]["cost"], options["JD"]["score"], options["YTO"]["score"]) == (22.0, 0.5, 0.5)
    assert f"WH Chengdu: {text}" in decision["explanation"]  # the stored explanation says it too
    [row] = await decisions(ref, order_id)
    assert row.decision["shipments"][0]["carrier"]["carrier"] == "YTO"

    # SLA counts most now: the next order goes with JD (faster), same warehouse.
    query = UPDATE_POLICY.replace("updatedBy", "updatedBy carrierWeights")
    data = await gql(query, {"input": {"carrierWeights": {"cost": 0.1, "sla": 1}}}, api_key=tenant_a.api_key)
    assert data["updateRoutingPolicy"]["userErrors"] == []
    order_id = await ingest(shop, "CARRIER-2")
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    assert (fo.location_id, fo.carrier) == (chengdu, "JD")
    data = await gql(ROUTING, {"id": gid("Order", ref, order_id)}, api_key=tenant_a.api_key)
    [shipment] = data["orderRouting"]["decisions"][0]["shipments"]
    assert shipment["carrierExplanation"].startswith(
        "Carrier JD/fast: lowest weighted score (cost 0.1, SLA 1)"
    )


async def test_a_mandated_carrier_from_the_policy_rule_wins_end_to_end(gql, tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU, city="Chengdu", province="Sichuan")
    shop = await make_shop(ref, {chengdu: 5})
    async with tenant_session(ref) as session:
        from app.channels.models import Channel

        channel_code = (await session.get(Channel, shop.channel_id)).code
    await create(gql, tenant_a, code="YTO", name="YTO", services={"eco": {"rates": {"*": rate(6, 1)}}})
    await create(gql, tenant_a, code="JD", name="JD", services={"fast": {"rates": {"*": rate(30, 9)}}})
    data = await gql("{ routingPolicy { rules } }", api_key=tenant_a.api_key)
    rules = [
        *data["routingPolicy"]["rules"],
        {
            "code": "web_jd",
            "kind": "channel_carrier",
            "params": {"channels": [channel_code], "carrier": "JD"},
        },
    ]
    data = await gql(UPDATE_POLICY, {"input": {"rules": rules}}, api_key=tenant_a.api_key)
    assert data["updateRoutingPolicy"]["userErrors"] == []

    order_id = await ingest(shop, "CARRIER-M")
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.carrier == "JD"
    data = await gql(ROUTING, {"id": gid("Order", ref, order_id)}, api_key=tenant_a.api_key)
    [decision] = data["orderRouting"]["decisions"]
    assert decision["carrier"] == "JD"
    assert decision["shipments"][0]["carrierExplanation"].startswith("Carrier JD/fast: the mandated carrier")


async def test_without_carriers_the_requested_carrier_is_kept(tenant_a, run_jobs):
    ref = await tenant_ref(tenant_a.slug)
    chengdu = await warehouse(ref, "WH Chengdu", CHENGDU)
    shop = await make_shop(ref, {chengdu: 5})
    order_id = await ingest(shop, "CARRIER-0")
    await drain(run_jobs)
    [fo] = await fulfillment_orders(ref, order_id)
    assert fo.carrier == "SF"  # the fixture order asks for SF
    [row] = await decisions(ref, order_id)
    assert row.decision["shipments"][0]["carrier"]["how"] == "no_carriers"
