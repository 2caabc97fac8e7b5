"""River online model: scoring, delayed-label learning, signed checkpoints, explanations.

Pure synchronous Python: nothing here imports Faust, Kafka or ``stream``. The worker and
``kuntur evaluate`` drive the same :class:`Detector`.
"""

from models.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from models.detector import Detector, LabelOutcome, Scored
from models.errors import (
    CheckpointError,
    CheckpointMismatch,
    CheckpointSignatureError,
    UnknownModelError,
)
from models.gam import AdditiveLogisticRegression
from models.linear import ClassWeighted, FastLogisticRegression, Forward
from models.mlp import OnlineMLP
from models.pending import Pending, PendingLabels
from models.quality import OnlineQuality
from models.registry import (
    CANDIDATES,
    DEFAULT_MODEL,
    DESCRIPTIONS,
    ESTIMATOR_CLASSES,
    PICKLED_CANDIDATES,
    build,
)
from models.scorer import FraudModel, Reason, Scoring

__all__ = [
    "CANDIDATES",
    "DEFAULT_MODEL",
    "DESCRIPTIONS",
    "ESTIMATOR_CLASSES",
    "PICKLED_CANDIDATES",
    "AdditiveLogisticRegression",
    "CheckpointError",
    "CheckpointMismatch",
    "CheckpointSignatureError",
    "ClassWeighted",
    "Detector",
    "FastLogisticRegression",
    "Forward",
    "FraudModel",
    "LabelOutcome",
    "OnlineMLP",
    "OnlineQuality",
    "Pending",
    "PendingLabels",
    "Reason",
    "Scored",
    "Scoring",
    "UnknownModelError",
    "build",
    "load_checkpoint",
    "read_metadata",
    "save_checkpoint",
]
