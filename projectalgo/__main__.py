import sys

from projectalgo.cli import main

sys.exit(main())
