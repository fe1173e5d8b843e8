"""Task adapters (one module per task family)."""

from w2s.tasks.base import LETTERS, LocalMultipleChoice, MultipleChoiceTask, Task, format_mcqa_prompt
from w2s.tasks.chess import Chess
from w2s.tasks.math_reasoning import MathReasoning
from w2s.tasks.mcqa import MultipleChoice
from w2s.tasks.sources import BENCHMARKS, Benchmark, Fields
from w2s.tasks.toy import ToyKnowledge
from w2s.tasks.toy_chess import ToyChess
from w2s.tasks.toy_math import ToyMath

__all__ = ["BENCHMARKS", "LETTERS", "Benchmark", "Chess", "Fields", "LocalMultipleChoice", "MathReasoning",
           "MultipleChoice", "MultipleChoiceTask", "Task", "ToyChess", "ToyKnowledge", "ToyMath", "format_mcqa_prompt"]
