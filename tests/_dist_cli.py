"""Driver of tests/test_distributed.py: several `torchlinreg train` runs in one torchrun job.

Run as ``torchrun --nproc_per_node=2 tests/_dist_cli.py OUT CMD_FILE``: CMD_FILE holds one
JSON list of argument lists; each is run with ``torchlinreg.cli.app.run`` inside one process
group joined here (a command uses a group it finds), and every rank writes its exit codes
to ``OUT/codes{rank}.json``.
"""

from __future__ import annotations

import json
import os
import sys

import torch.distributed as dist

from torchlinreg.cli.app import run


def main() -> None:
    out, cmd_file = sys.argv[1], sys.argv[2]
    with open(cmd_file) as f:
        commands = json.load(f)
    dist.init_process_group("gloo")
    codes = [run(args) for args in commands]
    dist.barrier()
    dist.destroy_process_group()
    with open(os.path.join(out, f"codes{os.environ['RANK']}.json"), "w") as f:
        json.dump(codes, f)


if __name__ == "__main__":
    main()
