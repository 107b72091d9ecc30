import sys

from app.gcpause import collector_paused

with collector_paused():  # while the CLI's modules are imported (app.gcpause says why)
    from app.cli import main

sys.exit(main())
