"""Reference implementations of the Margo roles (DESIGN.md §3): real subjects with faults as data."""
