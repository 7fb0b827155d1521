import sys

from c2s_lightning.cli import main

result = main()
sys.exit(result if isinstance(result, int) else 0)
