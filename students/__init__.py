"""Students (one module each): importing this package registers them for the CLI."""

from students.grpo import GRPOStudent
from students.sft import LoRASFTStudent

__all__ = ["GRPOStudent", "LoRASFTStudent"]
