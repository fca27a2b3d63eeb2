"""`python -m pipeline ...` is `vidpipe ...`."""
import sys

from .cli import main

sys.exit(main())
