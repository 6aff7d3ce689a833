"""Phase 5's workflows: tasks that wait for the tasks they depend on.

* ``spec.py``: a workflow as an operator submits it; its graph checked (unknown keys,
  cycles named) before anything is stored;
* ``store.py``: a workflow's tasks created in one step, its status, its retry;
* ``lua/settle.lua``: one waiting task released, or cancelled, once its parents decide it;
* ``release.py``: the leader's duty that settles the children of every task that ended.
"""
