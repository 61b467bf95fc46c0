"""Reading the results rows: ``rows`` (load, classify, choose: the query layer), ``readings`` (what a
row means for a figure), ``points`` (sweep rows -> plotted values) and ``claims`` (the paper's checks)."""
