"""Scans: sequential and parallel (lesson 5), the selective scan (lesson 4), CPU and CUDA kernels."""
