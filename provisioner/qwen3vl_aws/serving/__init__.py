"""The serving plan: instance type and model -> engine flags that fit the GPUs."""
