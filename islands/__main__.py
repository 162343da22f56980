"""`python -m islands`: the `islands` command (`islands.cli.main`)."""
from islands.cli import main

main()
