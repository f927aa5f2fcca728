"""``python -m medai_cli``: the ``medai`` console script without installing it."""

import sys

from medai_cli.main import main

sys.exit(main())
