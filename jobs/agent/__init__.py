"""The coding agent: the Messages API with tool use, run in a sandbox, under limits.

The blueprint calls :func:`run_agent` with a :class:`Task`, a sandbox, a model
(:class:`AnthropicModel`, or :class:`ReplayModel` offline) and a recorder
(:class:`StoreRecorder`); it gets an :class:`AgentResult` back, or a typed
:class:`~process.exceptions.AgentError` (``LimitsExceeded`` and friends) after the reason
was recorded on the run.
"""

from jobs.agent.config import AgentConfig, ModelRetry
from jobs.agent.limits import StepSpend
from jobs.agent.loop import AgentResult, RunRecorder, run_agent
from jobs.agent.model import AnthropicModel, Model, ModelResponse, anthropic_client
from jobs.agent.pricing import DEFAULT_PRICES, ModelPrice, PriceTable, Usage
from jobs.agent.prompt import Task
from jobs.agent.recorders import MemoryRecorder, StoreRecorder
from jobs.agent.replay import RecordingModel, ReplayModel, Transcript
from process.settings import AgentLimits, ModelRoles, Role

__all__ = [
    "DEFAULT_PRICES",
    "AgentConfig",
    "AgentLimits",
    "AgentResult",
    "AnthropicModel",
    "MemoryRecorder",
    "Model",
    "ModelPrice",
    "ModelResponse",
    "ModelRetry",
    "ModelRoles",
    "PriceTable",
    "RecordingModel",
    "ReplayModel",
    "Role",
    "RunRecorder",
    "StepSpend",
    "StoreRecorder",
    "Task",
    "Transcript",
    "Usage",
    "anthropic_client",
    "run_agent",
]
