"""Grid models: networks and the power-flow solvers that advance them every step."""
