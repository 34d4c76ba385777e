"""Static analysis of a checked graph, without Keras: output shapes and parameter counts per layer."""
