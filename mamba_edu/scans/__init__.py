"""Scans: sequential, parallel and the fused CPU kernel (lesson 6); the selective scan (lesson 4); CUDA (lesson 7)."""
