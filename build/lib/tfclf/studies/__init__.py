"""Studies: grids of runs (spec, ledger, engines, result tables) and the speed benchmark."""
