"""Pure declarations of an event-sourced model: messages, aggregates, projections, the Model."""

from allframe_lab.model.aggregate import Aggregate, applies, handles
from allframe_lab.model.info import ModelInfo
from allframe_lab.model.messages import (
    Command,
    Event,
    GenericEvent,
    Message,
    Query,
    message_type,
)
from allframe_lab.model.projection import Projection, RowSet, SqlProjection
from allframe_lab.model.registry import CommandRoute, Model
from allframe_lab.model.saga import Saga, reacts, starts, step
from allframe_lab.model.versioning import UpcasterChain, added_in, renamed_from, upcasts

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
    "Query",
    "RowSet",
    "Saga",
    "SqlProjection",
    "UpcasterChain",
    "added_in",
    "applies",
    "handles",
    "message_type",
    "reacts",
    "renamed_from",
    "starts",
    "step",
    "upcasts",
]
