"""Pure figure functions: arrays in, matplotlib Figure out, no file I/O (one module per lesson)."""
