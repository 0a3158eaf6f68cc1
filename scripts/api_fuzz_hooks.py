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
