"""Running a task on an agent: executors (a subprocess per task) and the runner that records it."""
