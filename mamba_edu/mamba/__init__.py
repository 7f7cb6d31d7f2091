"""The Mamba block and a small Mamba language model (lesson 4)."""
