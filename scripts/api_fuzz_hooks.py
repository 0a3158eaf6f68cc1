"""Schemathesis hooks for scripts/api-fuzz (loaded through SCHEMATHESIS_HOOKS).

A billing run as of a date far from today would renew every subscription through years of
periods (the seed's demo farms included), which says nothing about the API contract and takes
minutes per example; the run keeps its generated date when it is invalid, and moves a valid
one to within three days of today."""

import datetime
import random

import schemathesis


@schemathesis.hook
def map_case(context, case):
    if case.operation.path == "/v1/tenants/{tenant_id}/usage" and case.method.upper() == "POST":
        return _usage_timestamp_now(case)
    if case.operation.path != "/v1/admin/billing-run" or not isinstance(case.query, dict):
        return case
    value = case.query.get("date")
    try:
        datetime.date.fromisoformat(value)
    except (TypeError, ValueError):
        return case
    near = datetime.date.today() + datetime.timedelta(days=random.randint(-3, 3))
    case.query["date"] = near.isoformat()
    return case


def _usage_timestamp_now(case):
    """A usage event's timestamp must fall in the tenant's current billing period and at most
    five minutes ahead (the document says so; a schema cannot say "now"). A valid generated one
    is moved to now; an invalid one is kept."""
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("timestamp"), str):
        return case
    try:
        datetime.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    except ValueError:
        return case
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    body["timestamp"] = now.isoformat().replace("+00:00", "Z")
    return case
