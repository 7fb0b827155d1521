"""Names of what a run leaves for readers: the training loggers write them (``training/loggers.py``,
the sweep runner), ``report`` and the sweep runner read them, without importing Lightning."""

CSV_FOLDER = "csv"  # <run folder>/csv/: Lightning's CSV logger output
METRICS_FILE = "metrics.csv"  # a row per logged step, a column per metric
STATUS_FILE = "status.json"  # {"status": "success" | "failed"}, written when the trainer stops
SWEEP_STATE = "sweep_state.json"  # in a sweep's folder: each run's record (``sweep/state.py``)
