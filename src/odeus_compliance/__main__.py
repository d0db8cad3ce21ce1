"""``python -m odeus_compliance``: the same as the ``odeus-compliance`` command."""

from odeus_compliance.cli import main

main()
