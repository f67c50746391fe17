import sys

from styletrans.cli import main

sys.exit(main())
