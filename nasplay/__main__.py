from nasplay.cli import main
import sys
sys.exit(main())
