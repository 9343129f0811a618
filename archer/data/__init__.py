"""Data: `Sample` loading (files, hub datasets), benchmarks, the synthetic default task, prompt templates, streams."""

from archer.data.benchmarks import BENCHMARKS, BenchmarkData, benchmark_kind, load_benchmark
from archer.data.errors import DataError
from archer.data.files import FileData
from archer.data.jsonl import JsonlData, load_jsonl
from archer.data.stream import PromptStream
from archer.data.synthetic import SyntheticArithmetic
from archer.data.templates import ChatTemplate, PlainTemplate

__all__ = ["BENCHMARKS", "BenchmarkData", "ChatTemplate", "DataError", "FileData", "JsonlData", "PlainTemplate", "PromptStream",
           "SyntheticArithmetic", "benchmark_kind", "load_benchmark", "load_jsonl"]
