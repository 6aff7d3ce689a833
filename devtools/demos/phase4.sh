#!/usr/bin/env bash
# The phase 4 demo: the requirement list's REST calls with curl, then the same with taskctl.
# Run `make phase4-up` first; `make phase4-demo` runs this.
set -euo pipefail
API=${API_URL:-http://127.0.0.1:8000}
TASKCTL=".venv/bin/python -m phase4_api.taskctl --url $API"  # phase 4's own commands
export TASKFLOW_API_URL=$API

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { echo "\$ $*"; "$@"; echo; }
field() { .venv/bin/python -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
wait_running() {  # bounded: 60 polls of 0.5 s
  for _ in $(seq 60); do
    [ "$(curl -s "$API/api/v1/tasks/$1" | field status)" = RUNNING ] && return 0
    sleep 0.5
  done
  echo "task $1 never started" >&2; return 1
}

step "POST /api/v1/tasks: submit (201, PENDING)"
show curl -s -X POST "$API/api/v1/tasks" -H 'content-type: application/json' \
  -d '{"name": "hello", "type": "SHELL", "content": "echo hello from $TASKFLOW_AGENT_ID", "timeout": 10}'
id=$(curl -s -X POST "$API/api/v1/tasks" -d '{"name": "hello", "type": "PYTHON", "content": "print(6 * 7)"}' | field taskId)
$TASKCTL watch "$id" >/dev/null

step "GET /api/v1/tasks/{taskId}: status, result, logs"
show curl -s "$API/api/v1/tasks/$id"

step "the same requestId twice: one task"
for _ in 1 2; do
  show curl -s -w ' (HTTP %{http_code})\n' -X POST "$API/api/v1/tasks" \
    -d '{"name": "once", "type": "SHELL", "content": "true", "requestId": "order-17"}'
done

step "invalid input: 400 with field errors"
show curl -s -w ' (HTTP %{http_code})\n' -X POST "$API/api/v1/tasks" \
  -d '{"name": "bad", "type": "PERL", "timeout": -1}'

step "DELETE /api/v1/tasks/{taskId} of a running task: its agent kills the process group"
id=$($TASKCTL submit --name long --timeout 120 'sleep 60' | tail -n 1)
wait_running "$id"
show curl -s -w ' (HTTP %{http_code})\n' -o /dev/null -X DELETE "$API/api/v1/tasks/$id"
show $TASKCTL watch "$id" || true

step "POST /api/v1/tasks/{taskId}/retry of a failed task (this one fails on attempt 1 only)"
id=$($TASKCTL submit --name flaky 'test "$TASKFLOW_ATTEMPT" = 2' | tail -n 1)
$TASKCTL watch "$id" || true
show curl -s -w ' (HTTP %{http_code})\n' -o /dev/null -X POST "$API/api/v1/tasks/$id/retry"
show $TASKCTL watch "$id"

step "taskctl: submit and wait, list, agents"
show $TASKCTL submit --wait --name answer --type PYTHON 'print(6 * 7)'
show $TASKCTL list --limit 5
show $TASKCTL agents
