"""Submit a task to the phase 1 agent: ``python -m phase1_mvp.submit --help``."""

from shared.core.config import get_settings
from shared.core.keys import TASK_QUEUE
from shared.core.submit import submit_command

main = submit_command(TASK_QUEUE, get_settings)

if __name__ == "__main__":
    main()
