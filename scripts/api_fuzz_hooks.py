"""Schemathesis hooks for scripts/api-fuzz (loaded through SCHEMATHESIS_HOOKS).

A billing run as of a date far from today would renew every subscription through years of
periods (the seed's demo farms included), which says nothing about the API contract and takes
minutes per example; the run keeps its generated date when it is invalid, and moves a valid
one to within three days of today."""

import ast
import datetime
import random
import threading

import schemathesis

# CPython 3.11's `ast.parse` is not safe to call from two threads at once ("AST constructor
# recursion depth mismatch"), and hypothesis parses lambda sources with it while describing
# strategies, on each of the run's workers: one parse at a time.
_parse = ast.parse
_parse_lock = threading.Lock()


def _serialized_parse(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _serialized_parse


@schemathesis.hook
def map_case(context, case):
    if case.operation.path == "/v1/tenants/{tenant_id}/usage" and case.method.upper() == "POST":
        return _usage_timestamp_now(case)
    if case.operation.path == "/v1/tenants/{tenant_id}/usage" and case.method.upper() == "GET":
        return _usage_range_in_order(case)
    if case.operation.path == "/v1/enforce":
        return _enforce_names_a_tenant(case)
    if case.operation.path in ("/v1/reports/revenue", "/v1/events"):
        return _keep_cross_parameter_rules(context, case)
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


def _usage_range_in_order(case):
    """`from` must not be after `to`, and a lone `to` not before the current period's start
    (the default `from`) nor a lone `from` after its end, which a schema cannot say: valid dates
    are put in order, and a lone valid one gets the other the same. Invalid dates are kept."""
    query = case.query if isinstance(case.query, dict) else None
    if not query:
        return case
    dates = {}
    for name in ("from", "to"):
        # An empty value is not given (the document says so), as an absent one.
        try:
            given = query.get(name) not in (None, "")
            dates[name] = datetime.date.fromisoformat(query[name]) if given else None
        except (TypeError, ValueError):
            return case
    if dates["to"] is not None and dates["from"] is None:
        query["from"] = query["to"]
    elif dates["from"] is not None and dates["to"] is None:
        query["to"] = query["from"]
    elif dates["to"] is not None and dates["from"] > dates["to"]:
        query["from"], query["to"] = query["to"], query["from"]
    return case


def _enforce_names_a_tenant(case):
    """Service and platform callers name the tenant in X-Tenant-Id (400 without it); a tenant
    principal's is ignored. The document cannot make a header required for some callers only,
    so a case without it names the seeded farm (the run's super_admin has no tenant of its own)."""
    headers = case.headers if case.headers is not None else {}
    if not any(k.lower() == "x-tenant-id" for k in headers):
        headers["X-Tenant-Id"] = "demo-farm-active"
        case.headers = headers
    return case


def _date(value):
    try:
        return datetime.date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


def _keep_cross_parameter_rules(context, case):
    """Rules between two query parameters, which the document states in words because a
    parameter's schema cannot refer to another: the revenue range never ends before it starts
    (a missing bound is the current month's), and the events cursor given under both names
    names one seq. A case that breaks only such a rule is moved inside it; every other case,
    valid or not, is left as generated."""
    if not isinstance(case.query, dict):
        return case
    q = case.query
    if case.operation.path == "/v1/reports/revenue":
        today = datetime.datetime.now(datetime.timezone.utc).date()
        month_start = today.replace(day=1)
        month_end = (month_start + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)
        start, end = _date(q.get("start_date")), _date(q.get("end_date"))
        given = lambda k: q.get(k) not in (None, "")
        if start and end and start > end:
            q["start_date"], q["end_date"] = q["end_date"], q["start_date"]
        elif end and not given("start_date") and end < month_start:
            q["start_date"] = end.replace(day=1).isoformat()
        elif start and not given("end_date") and start > month_end:
            q["end_date"] = start.isoformat()
    elif case.operation.path == "/v1/events":
        seq = lambda v: int(str(v)) if not isinstance(v, bool) and str(v).isdigit() else None
        a, b = seq(q.get("after")), seq(q.get("starting_after"))
        if a is not None and b is not None and a != b:
            q["starting_after"] = q["after"]
    return case
