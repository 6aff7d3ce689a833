"""A task belongs to the token that submitted it.

Phase 4's routes call the task-manager through a client; phase 5 gives them this one,
which speaks for the request's token (``flask.g.token``, set by ``auth.protect``):

* every ``Submit`` names the token as the task's owner. The task records it (``owner`` in
  ``GET``), and the task-manager keeps the token's ``requestId``s apart from every other
  token's: two tokens sending the same ``requestId`` get two tasks. The same token sending
  it again with any submitted field changed gets 409 ``request_id_reused``;
* every ``Cancel`` and ``Retry`` names the token as the caller: an operator changes its
  own tasks only (403 ``not_owner``), an admin any task (``changes_any_task``).

The task-manager checks both (``shared/rpc/service.py``), in the same call that makes the
change, so no other route and no second API can skip them.
"""

from __future__ import annotations

import grpc
from flask import g

from phase4_api.api import ApiError
from phase5_observability.auth import changes_any_task
from shared.rpc import task_service_pb2 as pb
from shared.rpc.client import TaskManagerClient

CHANGES = ("Cancel", "Retry")  # the calls that change another's task, if anyone's
# the task-manager's refusals of a caller, as the API answers them
REFUSALS = {
    grpc.StatusCode.PERMISSION_DENIED: (403, "not_owner"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "request_id_reused"),
}


class CallerClient:
    """A ``TaskManagerClient`` whose calls say which token asks."""

    def __init__(self, client: TaskManagerClient) -> None:
        self.client = client

    def call(self, method: str, request: object, longer: float = 0.0) -> object:
        token = g.get("token")
        if token is not None:
            if isinstance(request, pb.SubmitRequest):
                request.owner = token.name
            elif method in CHANGES:
                request.caller.CopyFrom(  # type: ignore[attr-defined]
                    pb.Caller(name=token.name, any_owner=changes_any_task(token.role))
                )
        try:
            return self.client.call(method, request, longer)
        except grpc.RpcError as exc:
            if exc.code() not in REFUSALS:
                raise
            status, code = REFUSALS[exc.code()]
            raise ApiError(status, code, exc.details() or code) from None
