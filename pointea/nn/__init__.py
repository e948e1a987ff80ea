"""Layers: external / self / offset attention, neighbour embedding, LBR."""

from .common import LBR
from .embedding import NeighborEmbedding
from .external_attention import ExternalAttention
from .offset_attention import OffsetAttention, make_attention
from .self_attention import SelfAttention

__all__ = [
    "LBR",
    "ExternalAttention",
    "NeighborEmbedding",
    "OffsetAttention",
    "SelfAttention",
    "make_attention",
]
