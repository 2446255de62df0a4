"""The analysis stage: statistics, tables, plots and a report from results Parquet files.

``load`` reads and validates the Parquet contract; ``stats``, ``orthogonal``, ``mcv``,
``corruption`` and ``pixel`` hold the statistics of the seed papers (scipy/statsmodels);
``recipes`` the YAML recipes saying what to compute; ``steps_*`` turn one recipe step into
report sections; ``plots`` and ``render`` draw and write; ``report.analyze`` runs it all.
"""
