"""The workloads, one module per implementation; each maps ``W1``... to one function."""
