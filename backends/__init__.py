"""Built-in backend plugins, registered through the `mlpbench.backends` entry-point group."""
