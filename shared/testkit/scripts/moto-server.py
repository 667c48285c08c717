"""moto's server (`moto_server`'s arguments) with DynamoDB's requests taken
one at a time.

moto runs each TransactWriteItems on a deep copy of the whole table and puts
that copy back when the transaction is cancelled: a write another request
thread made meanwhile is lost, and the table's stream is replaced under a
reader (shared/docs/aws-adapters.md, "moto's stream after a cancelled
transaction"). DynamoDB serialises per item and never loses an acknowledged
write, so here DynamoDB and DynamoDB Streams requests (those whose
X-Amz-Target names them) go through one lock; every other service keeps
moto's threads. moto's DynamoDB is CPU-bound Python under one interpreter
lock, so the lock costs little time.

Run as `python3 -c "$(cat moto-server.py)" -H 127.0.0.1 -p PORT` (how
octoscope_testkit::moto::MotoServer starts it) or as a file.
"""

import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_one_at_a_time = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _call(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with _one_at_a_time:
            # The whole response is made inside the lock.
            return list(_dispatch(self, environ, start_response))
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _call

if __name__ == "__main__":
    server.main()
