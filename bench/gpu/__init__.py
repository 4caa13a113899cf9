"""The GPU benchmark: the project's engine and edge on real CUDA vLLM, run on the H200 device machine."""
