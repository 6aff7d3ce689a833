from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Task(_message.Message):
    __slots__ = ("task_id", "name", "type", "content", "timeout", "max_retries", "attempt", "status", "agent_id", "exit_code", "stdout", "stderr", "error", "created_at", "started_at", "finished_at", "request_id", "trace_id", "retries", "next_attempt_at", "owner", "schedule_id", "tick", "workflow_id", "key", "waiting_for")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    TICK_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    type: str
    content: str
    timeout: float
    max_retries: int
    attempt: int
    status: str
    agent_id: str
    exit_code: int
    stdout: str
    stderr: str
    error: str
    created_at: int
    started_at: int
    finished_at: int
    request_id: str
    trace_id: str
    retries: int
    next_attempt_at: int
    owner: str
    schedule_id: str
    tick: int
    workflow_id: str
    key: str
    waiting_for: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., content: _Optional[str] = ..., timeout: _Optional[float] = ..., max_retries: _Optional[int] = ..., attempt: _Optional[int] = ..., status: _Optional[str] = ..., agent_id: _Optional[str] = ..., exit_code: _Optional[int] = ..., stdout: _Optional[str] = ..., stderr: _Optional[str] = ..., error: _Optional[str] = ..., created_at: _Optional[int] = ..., started_at: _Optional[int] = ..., finished_at: _Optional[int] = ..., request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., retries: _Optional[int] = ..., next_attempt_at: _Optional[int] = ..., owner: _Optional[str] = ..., schedule_id: _Optional[str] = ..., tick: _Optional[int] = ..., workflow_id: _Optional[str] = ..., key: _Optional[str] = ..., waiting_for: _Optional[_Iterable[str]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("attempt", "status", "agent_id", "scheduled_at", "started_at", "finished_at", "exit_code", "error")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    status: str
    agent_id: str
    scheduled_at: int
    started_at: int
    finished_at: int
    exit_code: int
    error: str
    def __init__(self, attempt: _Optional[int] = ..., status: _Optional[str] = ..., agent_id: _Optional[str] = ..., scheduled_at: _Optional[int] = ..., started_at: _Optional[int] = ..., finished_at: _Optional[int] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class RunsReply(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("task_id", "name", "type", "content", "timeout", "max_retries", "request_id", "owner")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    type: str
    content: str
    timeout: float
    max_retries: int
    request_id: str
    owner: str
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., content: _Optional[str] = ..., timeout: _Optional[float] = ..., max_retries: _Optional[int] = ..., request_id: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("task", "created")
    TASK_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    task: Task
    created: bool
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class Caller(_message.Message):
    __slots__ = ("name", "any_owner")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ANY_OWNER_FIELD_NUMBER: _ClassVar[int]
    name: str
    any_owner: bool
    def __init__(self, name: _Optional[str] = ..., any_owner: _Optional[bool] = ...) -> None: ...

class TaskRef(_message.Message):
    __slots__ = ("task_id", "caller")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    caller: Caller
    def __init__(self, task_id: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class WaitRequest(_message.Message):
    __slots__ = ("task_id", "seconds")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    seconds: float
    def __init__(self, task_id: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class RetryRequest(_message.Message):
    __slots__ = ("task_id", "attempt", "caller")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    caller: Caller
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class TaskReply(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("status", "type", "limit", "cursor", "schedule_id")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    status: str
    type: str
    limit: int
    cursor: str
    schedule_id: str
    def __init__(self, status: _Optional[str] = ..., type: _Optional[str] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ..., schedule_id: _Optional[str] = ...) -> None: ...

class ListReply(_message.Message):
    __slots__ = ("tasks", "next_cursor")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_cursor: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Agent(_message.Message):
    __slots__ = ("id", "host", "pid", "capacity", "types", "running", "cpu_percent", "memory_percent", "last_seen", "suspect")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    SUSPECT_FIELD_NUMBER: _ClassVar[int]
    id: str
    host: str
    pid: int
    capacity: int
    types: _containers.RepeatedScalarFieldContainer[str]
    running: int
    cpu_percent: float
    memory_percent: float
    last_seen: int
    suspect: bool
    def __init__(self, id: _Optional[str] = ..., host: _Optional[str] = ..., pid: _Optional[int] = ..., capacity: _Optional[int] = ..., types: _Optional[_Iterable[str]] = ..., running: _Optional[int] = ..., cpu_percent: _Optional[float] = ..., memory_percent: _Optional[float] = ..., last_seen: _Optional[int] = ..., suspect: _Optional[bool] = ...) -> None: ...

class ListAgentsReply(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    def __init__(self, agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskCount(_message.Message):
    __slots__ = ("type", "status", "count")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    type: str
    status: str
    count: int
    def __init__(self, type: _Optional[str] = ..., status: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ("counts", "finished_recently", "window_seconds", "leader", "agents")
    class FinishedRecentlyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_RECENTLY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[TaskCount]
    finished_recently: _containers.ScalarMap[str, int]
    window_seconds: int
    leader: str
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    def __init__(self, counts: _Optional[_Iterable[_Union[TaskCount, _Mapping]]] = ..., finished_recently: _Optional[_Mapping[str, int]] = ..., window_seconds: _Optional[int] = ..., leader: _Optional[str] = ..., agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ...) -> None: ...
