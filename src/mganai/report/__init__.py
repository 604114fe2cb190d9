"""Reports: image grids (and, later, plots and HTML) from a run's outputs."""
