"""Submit a task to the phase 2 leader: ``python -m phase2_zookeeper.submit --help``."""

from shared.core.config import get_settings
from shared.core.keys import PENDING_QUEUE
from shared.core.submit import submit_command

main = submit_command(PENDING_QUEUE, get_settings)

if __name__ == "__main__":
    main()
