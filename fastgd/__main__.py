"""Run the command line with ``python -m fastgd``."""

from fastgd._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
