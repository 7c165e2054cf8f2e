"""Built-in task plugins, registered through the `mlpbench.tasks` entry-point group."""
