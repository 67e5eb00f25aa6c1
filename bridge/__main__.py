import sys

from .ioc import main

sys.exit(main())
