"""The device persona: the suite plays the WFM (an instrument WFM it drives through a control
interface) and the OCI registry, starts the device's WFM client through a launcher, and watches the
device's container runtime through an observer (DESIGN.md §2, §4)."""
