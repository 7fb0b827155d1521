"""The native readers, one module per file-format family; :func:`~c2s_lightning.data.datasets.read_dataset`
is their one entry point. Each reader takes the dataset folder as distributed (its layout:
``DATASETS[name].layout``, docs/data.md) and returns its rows for ``checks.finish`` to check.

- ``mat``: MATLAB label files (LIVE Release 2, CLIVE).
- ``sheet``: Excel workbooks (CSIQ, BID, SPAQ).
- ``text``: text label files (KADID-10k, KonIQ-10k, AGIQA-3K, TID2013).
- ``lists``: the user's own CSV/TSV/JSON lists.
- ``checks``: what every reader shares: label files, label values, the images they list.
"""
