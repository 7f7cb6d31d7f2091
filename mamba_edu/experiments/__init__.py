"""The Mamba paper's synthetic tasks (selective copying, induction heads) and their trainer (lesson 6)."""
