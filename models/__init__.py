"""River online model: scoring, delayed-label learning, checkpoints, explanations.

Pure synchronous Python: nothing here imports Faust, Kafka or ``stream``. The worker and
``kuntur evaluate`` drive the same :class:`Detector`.
"""

from models.candidates import CANDIDATES, DEFAULT_MODEL, DESCRIPTIONS, build
from models.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from models.detector import Detector, LabelOutcome, Scored
from models.errors import CheckpointError, CheckpointMismatch, UnknownModelError
from models.pending import Pending, PendingLabels
from models.quality import OnlineQuality
from models.scorer import FraudModel, Reason

__all__ = [
    "CANDIDATES",
    "DEFAULT_MODEL",
    "DESCRIPTIONS",
    "CheckpointError",
    "CheckpointMismatch",
    "Detector",
    "FraudModel",
    "LabelOutcome",
    "OnlineQuality",
    "Pending",
    "PendingLabels",
    "Reason",
    "Scored",
    "UnknownModelError",
    "build",
    "load_checkpoint",
    "read_metadata",
    "save_checkpoint",
]
