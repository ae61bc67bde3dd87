import sys

from proxyctl.cli.main import main

sys.exit(main())
