"""What the contract says in words and JSON Schema cannot: a cursor comes from
a previous page (a made-up one is the documented 400), and a metrics window
has since before until, at most 3660 days apart, until defaulting to now.
Schema-valid values that break those are reshaped; invalid ones are left as
they are, to be rejected."""

import datetime as dt
import re

import schemathesis

CURSOR = re.compile(r"^[A-Za-z0-9_-]*$")
MAX_WINDOW = dt.timedelta(days=3660)


def _time(value):
    """A `since`/`until` value as the server reads it, or None."""
    if not isinstance(value, str):
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.timezone.utc)
        t = dt.datetime.fromisoformat(value.replace("z", "Z"))
        return t if t.tzinfo else None
    except ValueError:
        return None


@schemathesis.hook
def map_query(context, query):
    if not query:
        return query
    if isinstance(query.get("cursor"), str) and CURSOR.match(query["cursor"]):
        del query["cursor"]
    if "since" in query:
        since = _time(query["since"])
        until = _time(query["until"]) if "until" in query else dt.datetime.now(dt.timezone.utc)
        try:
            if since is not None and until is not None and not (until - MAX_WINDOW <= since < until):
                query["since"] = (until - dt.timedelta(days=30)).isoformat()
        except OverflowError:  # near year 1: no earlier window in Python's range
            del query["since"]
    return query
