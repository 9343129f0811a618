"""Data: `Sample` loading (JSONL), the synthetic default task, prompt templates, streams."""

from archer.data.jsonl import DataError, JsonlData, load_jsonl
from archer.data.stream import PromptStream
from archer.data.synthetic import SyntheticArithmetic
from archer.data.templates import ChatTemplate, PlainTemplate

__all__ = ["ChatTemplate", "DataError", "JsonlData", "PlainTemplate", "PromptStream", "SyntheticArithmetic", "load_jsonl"]
