import sys

from latentloom.app.launcher import main

sys.exit(main())
