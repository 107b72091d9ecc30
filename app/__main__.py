import gc
import sys

gc.disable()  # while the CLI's modules are imported (app.cli.collector_paused says why)
from app.cli import main  # noqa: E402

gc.enable()
sys.exit(main())
