"""Allow ``python -m rootcanary``."""

from rootcanary.cli import main

main()
