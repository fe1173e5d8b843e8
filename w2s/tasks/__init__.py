"""Task adapters (one module per task family)."""

from w2s.tasks.base import LETTERS, LocalMultipleChoice, MultipleChoiceTask, Task, format_mcqa_prompt
from w2s.tasks.toy import ToyKnowledge

__all__ = ["LETTERS", "LocalMultipleChoice", "MultipleChoiceTask", "Task", "ToyKnowledge", "format_mcqa_prompt"]
