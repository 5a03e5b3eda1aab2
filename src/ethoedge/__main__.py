import sys

from ethoedge.cli import main

sys.exit(main())
