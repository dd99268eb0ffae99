import sys

from fastv.cli import main

sys.exit(main())
