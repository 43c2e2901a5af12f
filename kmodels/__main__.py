"""`python -m kmodels ...`: the same as the `kmodels` command."""

from kmodels.cli import console_main

if __name__ == "__main__":
    console_main()
