import gc
import sys

gc.disable()  # while the CLI's modules are imported (app.gcpause says why)
from app.cli import main  # noqa: E402

gc.enable()
sys.exit(main())
