import sys

from nasplay.cli.dispatch import main

sys.exit(main())
