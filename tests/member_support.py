"""GraphQL documents and one helper for the members tests: invite someone and let them join."""

from __future__ import annotations

import secrets

INVITE = """mutation($input: InviteMemberInput!) {
  inviteMember(input: $input) {
    token invitation { id email role status expiresAt invitedBy { email } }
    userErrors { field message code } } }"""
ACCEPT = """mutation($input: AcceptInvitationInput!) {
  acceptInvitation(input: $input) {
    accessToken refreshToken expiresIn role tenant { slug } userErrors { field message code } } }"""
MEMBERS = "{ members { edges { node { id role joinedAt user { email name } } } } }"
INVITATIONS = """query($all: Boolean) { invitations(includeClosed: $all) {
  edges { node { id email role status acceptedAt revokedAt } } } }"""
CHANGE_ROLE = """mutation($input: ChangeMemberRoleInput!) {
  changeMemberRole(input: $input) { member { id role } userErrors { field message code } } }"""
REMOVE = """mutation($input: RemoveMemberInput!) {
  removeMember(input: $input) { removedMemberId userErrors { field message code } } }"""
REVOKE_INVITATION = """mutation($input: RevokeInvitationInput!) {
  revokeInvitation(input: $input) {
    invitation { id status revokedAt } userErrors { field message code } } }"""
VIEWER = "{ viewer { role scopes user { email } tenant { slug } } }"
PASSWORD = "a long enough password"


async def invite(gql, token: str, email: str, role: str) -> dict:
    """``inviteMember`` as ``token``; fails the test on a userError."""
    data = (await gql(INVITE, {"input": {"email": email, "role": role}}, token=token))["inviteMember"]
    assert data["userErrors"] == [], data
    return data


async def join(gql, owner_token: str, role: str, email: str | None = None) -> tuple[str, str]:
    """A new user invited with ``role`` who accepts anonymously: (their access token, their email)."""
    email = email or f"{role}-{secrets.token_hex(3)}@example.com"
    token = (await invite(gql, owner_token, email, role))["token"]
    accepted = (await gql(ACCEPT, {"input": {"token": token, "password": PASSWORD, "name": role}}))[
        "acceptInvitation"
    ]
    assert accepted["userErrors"] == [], accepted
    return accepted["accessToken"], email


async def member_ids(gql, token: str) -> dict[str, tuple[str, str]]:
    """email -> (member id, role) of the caller's tenant."""
    edges = (await gql(MEMBERS, token=token))["members"]["edges"]
    return {e["node"]["user"]["email"]: (e["node"]["id"], e["node"]["role"]) for e in edges}


def codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]
