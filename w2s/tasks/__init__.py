"""Task adapters (one module per task family). The toy worlds' tasks live in ``w2s.toy``."""

from w2s.tasks.base import LETTERS, LocalMultipleChoice, MultipleChoiceTask, Task, format_mcqa_prompt
from w2s.tasks.chess import Chess
from w2s.tasks.math_reasoning import MathReasoning
from w2s.tasks.mcqa import MultipleChoice
from w2s.tasks.sources import BENCHMARKS, Benchmark, Fields

__all__ = ["BENCHMARKS", "LETTERS", "Benchmark", "Chess", "Fields", "LocalMultipleChoice", "MathReasoning",
           "MultipleChoice", "MultipleChoiceTask", "Task", "format_mcqa_prompt"]
