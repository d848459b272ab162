"""The task manager: background tasks (`POST _reindex?wait_for_completion=false`) and the tasks API.

GET _tasks/<node>:<id>[?wait_for_completion]   ES TaskResult: {completed, task: TaskInfo, response | error}
GET _tasks[?actions=*reindex&detailed]          ES ListTasksResponse grouped by node (running tasks only)
POST _tasks/<node>:<id>/_cancel                 cancels a running task (ES CancelTasksResponse: the cancelled task)

A completed task stays readable by id, as ES keeps its result in the `.tasks` index (TaskResultsService).
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import EsError, IllegalArgument, ResourceNotFound
from sandbox.http import EsRequest, Route
from sandbox.ids import now_millis


class TaskCancelled(Exception):
    """Raised inside a task's work when it has been cancelled."""


@dataclass
class Task:
    node: str
    id: int
    action: str
    description: str
    start_millis: int = field(default_factory=now_millis)
    started: float = field(default_factory=time.monotonic)
    status: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    completed: bool = False
    response: Any = None
    error: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def task_id(self) -> str:
        return f"{self.node}:{self.id}"

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise TaskCancelled

    def info(self, detailed: bool = True) -> dict[str, Any]:
        """ES TaskInfo#toXContent."""
        info: dict[str, Any] = {"node": self.node, "id": self.id, "type": "transport", "action": self.action}
        if detailed:
            info["status"] = dict(self.status)
            info["description"] = self.description
        info.update({"start_time_in_millis": self.start_millis,
                     "running_time_in_nanos": int((time.monotonic() - self.started) * 1e9),
                     "cancellable": True, "cancelled": self.cancelled, "headers": {}})
        return info

    def result(self) -> dict[str, Any]:
        """ES TaskResult#toXContent."""
        out: dict[str, Any] = {"completed": self.completed, "task": self.info()}
        if self.error is not None:
            out["error"] = self.error
        elif self.completed:
            out["response"] = self.response
        return out


class TaskManager:
    def __init__(self, cluster: Any):
        self.cluster = cluster
        self.tasks: dict[str, Task] = {}
        self._next = 0
        self._ids = threading.Lock()

    def start(self, action: str, description: str, work: Callable[[Task], Any]) -> Task:
        """Run work(task) on a thread; its return value becomes the response, an EsError the error."""
        with self._ids:
            self._next += 1
            task = Task(self.cluster.node_id, self._next, action, description)
        self.tasks[task.task_id] = task

        def run() -> None:
            try:
                task.response = work(task)
            except TaskCancelled:
                task.error = {"type": "task_cancelled_exception", "reason": "by user request"}
            except EsError as error:
                task.error = error.cause_dict()
            except Exception as exc:  # a sandbox bug: keep it visible in the task result
                task.error = {"type": "exception", "reason": f"sandbox internal error: {exc}"}
            finally:
                task.completed = True
                task.done.set()

        threading.Thread(target=run, name=f"sandbox-task-{task.id}", daemon=True).start()
        return task

    def get(self, task_id: str) -> Task:
        node, _, number = task_id.partition(":")
        if not number.isdigit() or not node:
            raise IllegalArgument(f"malformed task id {task_id}")
        task = self.tasks.get(task_id)
        if task is None:
            if node != self.cluster.node_id:
                # ES TransportGetTaskAction#getFinishedTaskFromIndex, reached for a node not in the cluster
                raise ResourceNotFound(f"task [{task_id}] belongs to the node [{node}] which isn't part of the "
                                       f"cluster and there is no record of the task")
            raise ResourceNotFound(f"task [{task_id}] isn't running and hasn't stored its results")
        return task

    # ---- state ------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        for task in self.tasks.values():
            task.cancelled = True
        self.tasks = {}

    def dump(self) -> dict[str, Any]:
        return {}  # running tasks do not survive a restart; stored results are not kept across one either

    def load(self, data: dict[str, Any]) -> None:
        pass


def _tasks(sb: Any) -> TaskManager:
    return sb.cluster.tasks


def _timeout_seconds(req: EsRequest) -> float:
    """A TimeValue parameter (`30s`, `500ms`, `1m`), default 30s."""
    text = req.args.get("timeout", "30s")
    for suffix, scale in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if text.endswith(suffix) and text[:-len(suffix)].replace(".", "", 1).isdigit():
            return float(text[:-len(suffix)]) * scale
    raise IllegalArgument(f"failed to parse setting [timeout] with value [{text}] as a time value: unit is missing "
                          "or unrecognized")


def get_task(sb: Any, req: EsRequest, task_id: str) -> dict:
    """Runs without the cluster lock (locked=False on its route): waiting for a task must not stop it."""
    with sb.cluster.lock:
        task = _tasks(sb).get(task_id)
    waited = not req.flag("wait_for_completion") or task.completed or task.done.wait(_timeout_seconds(req))
    if not waited:
        raise EsError(f"Timed out waiting for completion of task [{task_id}]", status=408,
                      type="elasticsearch_timeout_exception")
    with sb.cluster.lock:
        return task.result()


def _node_entry(sb: Any, tasks: dict[str, Any]) -> dict[str, Any]:
    return {"name": "sandbox-node-1", "transport_address": "127.0.0.1:9300", "host": "127.0.0.1",
            "ip": "127.0.0.1:9300", "roles": ["data", "ingest", "master", "ml", "transform"], "tasks": tasks}


def _matches(action: str, patterns: list[str] | None) -> bool:
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(action, p) for p in patterns)


def list_tasks(sb: Any, req: EsRequest) -> dict:
    detailed = req.flag("detailed")
    patterns = req.list_arg("actions")
    running = {t.task_id: t.info(detailed) for t in _tasks(sb).tasks.values()
               if not t.completed and _matches(t.action, patterns)}
    group_by = req.args.get("group_by", "nodes")
    if group_by == "none" or group_by == "parents":
        return {"tasks": list(running.values()) if group_by == "none" else running}
    return {"nodes": {sb.cluster.node_id: _node_entry(sb, running)} if running else {}}


def cancel_task(sb: Any, req: EsRequest, task_id: str) -> dict:
    """ES TransportCancelTasksAction#processTasks: a running task is marked cancelled and listed; a finished one is
    ResourceNotFoundException "task [x] is not found" (404)."""
    task = _tasks(sb).get(task_id)
    if task.completed:
        raise ResourceNotFound(f"task [{task_id}] is not found")
    task.cancelled = True
    return {"nodes": {sb.cluster.node_id: _node_entry(sb, {task.task_id: task.info(True)})}}


ROUTES = [
    Route(("GET",), "/_tasks", list_tasks, api="tasks.list"),
    Route(("GET",), "/_tasks/<task_id>", get_task, api="tasks.get", locked=False),
    Route(("POST",), "/_tasks/<task_id>/_cancel", cancel_task, api="tasks.cancel"),
]
