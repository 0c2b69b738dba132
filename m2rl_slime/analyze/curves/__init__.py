"""Training curves of the study's runs (``python -m m2rl_slime.analyze curves``): paper Figs. 2 and 9.

Not a slime hook: reads what slime logged (TensorBoard event files in the recipes' ``TENSORBOARD_DIR``, or a
wandb export) and the launcher's run records, and writes CSV/JSON plus figures redrawn from that JSON by
``python -m m2rl_slime.analyze plot``. Event files are decoded by a small reader of their own (`events`,
`tfrecord`), so neither TensorFlow nor TensorBoard is needed.
"""

from .events import read_event_file
from .figures import DEFAULT_FIGURES, FigureSpec, Metric, describe
from .series import Series, ema
from .sources import RunData, load_runs

__all__ = [
    "DEFAULT_FIGURES",
    "FigureSpec",
    "Metric",
    "RunData",
    "Series",
    "describe",
    "ema",
    "load_runs",
    "read_event_file",
]
