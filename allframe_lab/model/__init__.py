"""Pure declarations of an event-sourced model: messages, aggregates, projections, the Model."""

from allframe_lab.model.aggregate import Aggregate, applies, handles
from allframe_lab.model.info import ModelInfo
from allframe_lab.model.messages import Command, Event, GenericEvent, Message, message_type
from allframe_lab.model.projection import Projection, RowSet, SqlProjection
from allframe_lab.model.registry import CommandRoute, Model

__all__ = [
    "Aggregate",
    "Command",
    "CommandRoute",
    "Event",
    "GenericEvent",
    "Message",
    "Model",
    "ModelInfo",
    "Projection",
    "RowSet",
    "SqlProjection",
    "applies",
    "handles",
    "message_type",
]
